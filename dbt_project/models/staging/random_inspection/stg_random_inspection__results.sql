with

source as (
    {{ incremental_current_versions('random_inspection', 'random_inspection__results', 'result_id') }}
),

current_results as (
    select
        source.*,
        {# no type field: a 个体工商户 by code or registry, or nothing establishes an organisation #}
        {{ computed_once(party_is_person("util.clean_code(payload ->> 'uscc')")) }} as is_entity_person
    from source
    {{ registry_party_joins("util.clean_code(payload ->> 'uscc')", "util.clean_name(payload ->> 'entity_name')") }}
    where not is_deleted
),

renamed as (
    select
        record_id as result_id,
        util.clean_code(payload ->> 'task_id') as task_id,
        {{ uscc_columns('uscc') }}
        is_entity_person,
        case when not is_entity_person then util.clean_text(payload ->> 'entity_name') end as entity_name,
        {{ person_name_columns("payload ->> 'entity_name'", 'entity_name', 'is_entity_person') }}
        array(
            select util.clean_code(x)
            from jsonb_array_elements_text(coalesce(payload -> 'inspector_ids', '[]'::jsonb)) as x
        ) as inspector_ids,
        util.parse_date(payload ->> 'inspected_on') as inspected_on,
        util.clean_text(payload ->> 'outcome') as outcome_label,
        {{ open_code('random_inspection.results.outcome', "util.clean_text(payload ->> 'outcome')", 'outcome') }},
        util.parse_date(payload ->> 'published_on') as published_on,
        util.parse_date(payload ->> 'published_on') is not null as is_published,
        {{ record_meta() }}
    from current_results
)

select * from renamed
