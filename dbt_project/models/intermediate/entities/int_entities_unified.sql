{# one market entity per 统一社会信用代码 across the registry, 双公示, inspections and cases #}
{# a table: dim_entity and the tests read it, and its inputs are views over raw #}
{{ config(materialized='table', indexes=[{'columns': ['uscc'], 'unique': True}]) }}
with

registry as (
    select * from {{ ref('stg_market_supervision__entities') }}
),

sightings as (
    {# the validity flags come from staging (the 个体工商户 placeholder and invalid codes identify nobody) #}
    select uscc, is_uscc_valid, 'market_supervision' as source_system, entity_name, is_person from registry
    union all
    select uscc, is_uscc_valid, 'credit', party_name, is_party_person from {{ ref('stg_credit__admin_penalties') }}
    union all
    select uscc, is_uscc_valid, 'credit', party_name, is_party_person from {{ ref('stg_credit__admin_licenses') }}
    union all
    select uscc, is_uscc_valid, 'random_inspection', entity_name, is_entity_person
    from {{ ref('stg_random_inspection__results') }}
    union all
    select uscc, is_uscc_valid, 'random_inspection', null, null from {{ ref('stg_random_inspection__object_pool') }}
    union all
    select applicant_uscc, is_applicant_uscc_valid, 'gov_service', applicant_name, is_applicant_person
    from {{ ref('stg_gov_service__cases') }}
),

valid_sightings as (
    select * from sightings where is_uscc_valid
),

by_code as (
    select
        uscc,
        array_agg(distinct source_system order by source_system) as source_systems,
        bool_or(coalesce(is_person, false)) or left(uscc, 2) = '92' as is_person,
        min(entity_name) filter (where not coalesce(is_person, false)) as any_clear_name
    from valid_sightings
    group by uscc
),

latest_rating as (
    select distinct on (uscc) uscc, risk_level
    from {{ ref('stg_credit__risk_ratings') }}
    order by uscc, rated_on desc nulls last, risk_rating_id desc
),

registered as (
    select distinct on (uscc) *
    from registry
    where is_uscc_valid
    order by uscc, source_updated_at desc, entity_id
),

unified as (
    select
        c.uscc,
        r.entity_id is not null as is_registered,
        r.entity_type,
        c.is_person,
        case when not c.is_person then coalesce(r.entity_name, c.any_clear_name) end as entity_name,
        r.entity_name_masked,
        r.industry_code,
        r.status as registry_status,
        r.established_on,
        l.risk_level,
        c.source_systems
    from by_code as c
    left join registered as r on r.uscc = c.uscc
    left join latest_rating as l on l.uscc = c.uscc
)

select * from unified
