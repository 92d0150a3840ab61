{# every department reference the sources wrote (code, full name or alias) → the directory's dept_code #}
with

names as (
    select * from {{ ref('stg_directory__department_names') }}
),

refs as (
    {% set refs = [
        ('stg_gov_service__cases', 'dept_code', 'dept_ref_raw'),
        ('stg_gov_service__evaluations', 'dept_code', 'dept_ref_raw'),
        ('stg_gov_service__service_items', 'dept_code', 'dept_ref_raw'),
        ('stg_credit__admin_licenses', 'dept_code', 'dept_ref_raw'),
        ('stg_credit__admin_penalties', 'dept_code', 'dept_ref_raw'),
        ('stg_random_inspection__tasks', 'lead_dept_code', 'lead_dept_ref_raw'),
        ('stg_random_inspection__plans', 'dept_code', 'dept_ref_raw'),
        ('stg_random_inspection__inspection_items', 'dept_code', 'dept_ref_raw'),
        ('stg_random_inspection__object_pool', 'dept_code', 'dept_ref_raw'),
    ] %}
    {% for model, code, raw in refs %}
    select distinct {{ dept_ref_key(code, raw) }} as dept_ref_key
    from {{ ref(model) }}
    {% if not loop.last %}union{% endif %}
    {% endfor %}
),

resolved as (
    select
        r.dept_ref_key,
        n.dept_code,
        n.name_kind as matched_by,
        n.dept_code is not null as is_resolved
    from refs as r
    left join names as n on n.name_key = r.dept_ref_key
    where r.dept_ref_key is not null
)

select * from resolved
