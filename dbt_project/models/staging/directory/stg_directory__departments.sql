{#
    The submissions DAG loads the directory; until it has run once the raw table does not exist.
    Then this model is empty (every department reference stays unresolved and is reported as
    excluded) instead of failing the whole build; the warn test on dim_department flags it.
#}
{% set directory = source('directory', 'directory__departments') %}
{% set loaded = load_relation(directory) if execute else none %}
with

source as (
    {% if loaded is not none %}
    select * from {{ directory }}
    {% else %}
    select
        null::text as dept_code,
        null::text as dept_name,
        null::text[] as aliases,
        null::text as role,
        null::text[] as sources,
        null::int as freshness_days,
        null::timestamptz as _loaded_at
    where false
    {% endif %}
),

renamed as (
    select
        dept_code,
        dept_name,
        aliases as dept_aliases,
        role as dept_role,
        sources as source_names,
        freshness_days,
        _loaded_at
    from source
)

select * from renamed
