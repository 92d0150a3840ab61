{#-
    The registry's word on a party's kind, by code and by name: market-supervision entities
    (current versions) keyed 'code:<统一社会信用代码>' and 'name:<主体名称>'. `is_person`: some entity
    under the key is a 个体工商户 (by type or a 92… code); `is_organisation`: every entity under it
    is a 企业 or 农民专业合作社 and none a person. Placeholder and all-zero codes are not keys (they
    name no one). Holds 个体工商户 names, so it lives in schema deid like the name dictionary.
-#}
{{ config(alias='registry_parties') }}

with

entities as (
    {{ current_versions(source('market_supervision', 'market_supervision__entities')) }}
),

kinds as (
    select
        util.clean_code(payload ->> 'uscc') as code,
        util.clean_name(payload ->> 'name') as name,
        util.clean_text(payload ->> 'entity_type') = '个体工商户'
            or coalesce(util.clean_code(payload ->> 'uscc') like '92%', false) as is_person,
        util.clean_text(payload ->> 'entity_type') in ('企业', '农民专业合作社') as is_organisation
    from entities
    where not is_deleted
),

keyed as (
    select 'code:' || code as party_key, is_person, is_organisation
    from kinds
    where code ~ '^[0-9A-Z]{18}$' and code !~ '^0+X?$'
    union all
    select 'name:' || name, is_person, is_organisation
    from kinds
    where name is not null
),

registry_parties as (
    select
        party_key,
        bool_or(coalesce(is_person, false)) as is_person,
        bool_and(coalesce(is_organisation, false)) and not bool_or(coalesce(is_person, false)) as is_organisation
    from keyed
    group by party_key
)

select * from registry_parties
