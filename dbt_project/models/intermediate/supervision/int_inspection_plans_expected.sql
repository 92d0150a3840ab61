{# 抽查计划制定率 basis: one row per department that owns inspection items × plan year, and whether it has a plan #}
with

items as (
    select * from {{ ref('stg_random_inspection__inspection_items') }}
),

plans as (
    select * from {{ ref('stg_random_inspection__plans') }}
),

depts as (
    select * from {{ ref('int_department_refs_resolved') }}
),

owners as (
    select distinct d.dept_code
    from items as i
    inner join depts as d on d.dept_ref_key = {{ dept_ref_key('i.dept_code', 'i.dept_ref_raw') }}
),

planned as (
    select distinct d.dept_code, p.plan_year
    from plans as p
    inner join depts as d on d.dept_ref_key = {{ dept_ref_key('p.dept_code', 'p.dept_ref_raw') }}
    where p.plan_year is not null
),

years as (
    select distinct plan_year from planned
),

expected as (
    select
        o.dept_code,
        y.plan_year,
        p.dept_code is not null as has_plan
    from owners as o
    cross join years as y
    left join planned as p on p.dept_code = o.dept_code and p.plan_year = y.plan_year
)

select * from expected
