with

entities as (
    select * from {{ ref('int_entities_unified') }}
)

select
    uscc,
    is_registered,
    entity_type,
    is_person,
    entity_name,
    entity_name_masked,
    industry_code,
    registry_status,
    established_on,
    risk_level,
    source_systems
from entities
