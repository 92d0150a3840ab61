with

source as (
    {{ incremental_current_versions('credit', 'credit__admin_licenses', 'license_id') }}
),

current_licenses as (
    select
        source.*,
        util.clean_text(payload ->> 'party_category') as party_category_label,
        {# persons by category, code or registry, and parties nothing establishes as organisations #}
        {{ computed_once(party_is_person(
            "util.clean_code(payload ->> 'uscc')",
            "util.clean_text(payload ->> 'party_category') in ('自然人', '个体工商户')",
            "util.clean_text(payload ->> 'party_category') = '法人及非法人组织'",
        )) }} as is_party_person
    from source
    {{ registry_party_joins("util.clean_code(payload ->> 'uscc')", "util.clean_name(payload ->> 'party_name')") }}
    where not is_deleted
),

content_hits as (
    {{ dictionary_hits(raw_texts('credit', 'credit__admin_licenses', "util.clean_text(payload ->> 'content')")) }}
),

renamed as (
    select
        record_id as license_id,
        util.clean_text(payload ->> 'decision_no') as decision_no,
        util.clean_text(payload ->> 'license_name') as license_name,
        util.clean_text(payload ->> 'license_no') as license_no,
        util.clean_text(payload ->> 'license_category') as license_category_label,
        {{ open_code('credit.admin_licenses.license_category', "util.clean_text(payload ->> 'license_category')", 'license_category') }},
        {{ scrub_free_text(
            "util.clean_text(payload ->> 'content')",
            "array[payload ->> 'legal_rep_name', case when is_party_person then payload ->> 'party_name' end]",
            hits='content_hits',
        ) }} as content_scrubbed,
        party_category_label,
        {{ open_code('credit.admin_licenses.party_category', "party_category_label", 'party_category') }},
        is_party_person,
        case when not is_party_person then util.clean_text(payload ->> 'party_name') end as party_name,
        {{ person_name_columns("payload ->> 'party_name'", 'party_name', 'is_party_person') }}
        {{ uscc_columns('uscc') }}
        {{ person_name_columns("payload ->> 'legal_rep_name'", 'legal_rep_name') }}
        util.clean_text(payload ->> 'cert_type') as cert_type_label,
        {{ open_code('credit.admin_licenses.cert_type', "util.clean_text(payload ->> 'cert_type')", 'cert_type') }},
        {{ ric_columns("payload ->> 'cert_no'", 'cert_no', 'party') }}
        util.parse_date(payload ->> 'decided_on') as decided_on,
        util.parse_date(payload ->> 'valid_from') as valid_from,
        util.parse_date(payload ->> 'valid_until') as valid_until,
        util.clean_text(payload ->> 'authority_name') as authority_name,
        {{ uscc_columns('authority_uscc', 'authority_') }}
        {{ dept_columns('dept_code') }}
        util.clean_code(payload ->> 'service_item_id') as service_item_id,
        util.parse_beijing_timestamp(payload ->> 'reported_at') as reported_at,
        {{ record_meta() }}
    from current_licenses
    left join content_hits on content_hits.text = util.clean_text(payload ->> 'content')
)

select * from renamed
