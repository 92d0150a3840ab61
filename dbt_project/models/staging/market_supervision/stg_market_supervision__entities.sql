with

source as (
    {{ incremental_current_versions('market_supervision', 'market_supervision__entities', 'entity_id') }}
),

current_entities as (
    select
        *,
        util.clean_text(payload ->> 'entity_type') as entity_type_label,
        {# a 个体工商户 is a person (its name often is the operator's), and so is an entity whose kind
           neither its type nor a valid non-92 code establishes #}
        {{ computed_once(party_is_person(
            "util.clean_code(payload ->> 'uscc')",
            "util.clean_text(payload ->> 'entity_type') = '个体工商户'",
            "util.clean_text(payload ->> 'entity_type') in ('企业', '农民专业合作社')",
            registry=false,
        )) }} as is_person
    from source
    where not is_deleted
),

renamed as (
    select
        record_id as entity_id,
        {{ uscc_columns('uscc') }}
        entity_type_label,
        {{ open_code('market_supervision.entities.entity_type', "entity_type_label", 'entity_type') }},
        is_person,
        case when not is_person then util.clean_text(payload ->> 'name') end as entity_name,
        {{ person_name_columns("payload ->> 'name'", 'entity_name', 'is_person') }}
        {{ person_name_columns("payload ->> 'legal_rep_name'", 'legal_rep_name') }}
        {{ ric_columns("payload ->> 'legal_rep_cert_no'", 'legal_rep_cert_no', 'legal_rep') }}
        {{ phone_columns("payload ->> 'phone'", 'phone') }}
        case when not is_person then util.clean_text(payload ->> 'address') end as address,
        {# generalised: county and township only #}
        substring(util.clean_name(payload ->> 'address') from '^(.*?(镇|乡|街道))') as address_township,
        util.clean_code(payload ->> 'industry_code') as industry_code,
        util.to_numeric(payload ->> 'registered_capital') * 10000 as registered_capital_yuan,
        util.parse_date(payload ->> 'established_on') as established_on,
        util.clean_text(payload ->> 'status') as status_label,
        {{ open_code('market_supervision.entities.status', "util.clean_text(payload ->> 'status')", 'status') }},
        util.parse_date(payload ->> 'status_changed_on') as status_changed_on,
        (
            (util.clean_text(payload ->> 'established_on') is not null
                and util.parse_date(payload ->> 'established_on') is null)
            or (util.clean_text(payload ->> 'status_changed_on') is not null
                and util.parse_date(payload ->> 'status_changed_on') is null)
        ) as has_unparsed_date,
        {{ dept_columns('reg_authority_code', 'reg_authority') }}
        {{ record_meta() }}
    from current_entities
)

select * from renamed
