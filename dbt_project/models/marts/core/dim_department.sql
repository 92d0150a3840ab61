with

departments as (
    select * from {{ ref('stg_directory__departments') }}
),

with_district as (
    select dept_code, dept_name, dept_aliases, dept_role, false as is_district from departments
    union all
    {# the district as a whole: the dept_code of the indicator marts' district rows #}
    select 'DISTRICT', '全区', array[]::text[], 'district', true
)

select * from with_district
