{# empty until the submissions DAG has loaded the directory (see stg_directory__departments) #}
{% set names = source('directory', 'directory__department_names') %}
{% set loaded = load_relation(names) if execute else none %}
with

source as (
    {% if loaded is not none %}
    select * from {{ names }}
    {% else %}
    select null::text as name, null::text as dept_code, null::text as kind where false
    {% endif %}
),

renamed as (
    select
        {# the loader stores names already normalised; normalise again so both sides match #}
        util.clean_name(name) as name_key,
        dept_code,
        kind as name_kind
    from source
)

select * from renamed
