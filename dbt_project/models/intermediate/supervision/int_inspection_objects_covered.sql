{#
    双随机抽查覆盖率 basis: one row per department × entity in its 检查对象名录库 × year with
    inspection results, and whether that department's tasks inspected the entity that year.
    The 名录库 is a current snapshot: the same pool is the denominator of every year.
#}
with

pool as (
    select * from {{ ref('stg_random_inspection__object_pool') }}
),

results as (
    select * from {{ ref('fct_inspection_results') }}
),

depts as (
    select * from {{ ref('int_department_refs_resolved') }}
),

pool_entities as (
    select distinct
        d.dept_code,
        p.uscc
    from pool as p
    inner join depts as d on d.dept_ref_key = {{ dept_ref_key('p.dept_code', 'p.dept_ref_raw') }}
    where p.is_uscc_valid
),

years as (
    select distinct extract(year from inspected_on)::int as year_number
    from results
    where inspected_on is not null
),

inspected as (
    select distinct dept_code, uscc, extract(year from inspected_on)::int as year_number
    from results
    where uscc is not null and dept_code is not null and inspected_on is not null
),

covered as (
    select
        e.dept_code,
        e.uscc,
        y.year_number,
        i.uscc is not null as is_inspected
    from pool_entities as e
    cross join years as y
    left join inspected as i
        on i.dept_code = e.dept_code and i.uscc = e.uscc and i.year_number = y.year_number
)

select * from covered
