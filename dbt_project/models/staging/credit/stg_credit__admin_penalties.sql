with

source as (
    {{ incremental_current_versions('credit', 'credit__admin_penalties', 'penalty_id') }}
),

current_penalties as (
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

facts_hits as (
    {{ dictionary_hits(raw_texts('credit', 'credit__admin_penalties', "util.clean_text(payload ->> 'violation_facts')")) }}
),

renamed as (
    select
        record_id as penalty_id,
        util.clean_text(payload ->> 'decision_no') as decision_no,
        party_category_label,
        {{ open_code('credit.admin_penalties.party_category', "party_category_label", 'party_category') }},
        is_party_person,
        case when not is_party_person then util.clean_text(payload ->> 'party_name') end as party_name,
        {{ person_name_columns("payload ->> 'party_name'", 'party_name', 'is_party_person') }}
        {{ uscc_columns('uscc') }}
        {{ person_name_columns("payload ->> 'legal_rep_name'", 'legal_rep_name') }}
        util.clean_text(payload ->> 'cert_type') as cert_type_label,
        {{ open_code('credit.admin_penalties.cert_type', "util.clean_text(payload ->> 'cert_type')", 'cert_type') }},
        {{ ric_columns("payload ->> 'cert_no'", 'cert_no', 'party') }}
        util.clean_text(payload ->> 'violation_type') as violation_type,
        {{ scrub_free_text(
            "util.clean_text(payload ->> 'violation_facts')",
            "array[payload ->> 'legal_rep_name', case when is_party_person then payload ->> 'party_name' end]",
            hits='facts_hits',
        ) }} as violation_facts_scrubbed,
        util.clean_text(payload ->> 'legal_basis') as legal_basis,
        {{ json_text_array('penalty_types') }} as penalty_types,
        coalesce({{ json_text_array('penalty_types') }} = array['警告'], false) as is_warning_only,
        util.to_numeric(payload ->> 'fine_amount') * 10000 as fine_amount_yuan,
        util.to_numeric(payload ->> 'confiscated_amount') * 10000 as confiscated_amount_yuan,
        util.parse_date(payload ->> 'decided_on') as decided_on,
        util.parse_date(payload ->> 'publicity_until') as publicity_until,
        util.clean_text(payload ->> 'authority_name') as authority_name,
        {{ uscc_columns('authority_uscc', 'authority_') }}
        {{ dept_columns('dept_code') }}
        util.parse_beijing_timestamp(payload ->> 'reported_at') as reported_at,
        util.to_bool(payload ->> 'repair_notice_served') as has_repair_notice,
        {{ record_meta() }}
    from current_penalties
    left join facts_hits on facts_hits.text = util.clean_text(payload ->> 'violation_facts')
)

select * from renamed
