{# Incremental (merge on case_id, tombstones deleted): see incremental_current_versions. #}
with

source as (
    {{ incremental_current_versions('gov_service', 'gov_service__cases', 'case_id') }}
),

current_cases as (
    select
        *,
        {# read by a dozen columns below: computed once #}
        {{ computed_once("util.clean_text(payload ->> 'applicant_type')") }} as applicant_type_label,
        {{ computed_once("util.clean_text(payload ->> 'applicant_cert_type')") }} as cert_type_label,
        {{ computed_once("util.clean_code(payload ->> 'applicant_cert_no')") }} as cert_code
    from source
    where not is_deleted
),

classified as (
    select
        current_cases.*,
        {# a 个体工商户 applying as 法人 is still a person, so 法人 alone establishes nothing: the
           applicant is an organisation only by a valid non-92 code or the registry (code, then name) #}
        {{ computed_once(party_is_person(
            "case when cert_type_label is distinct from '身份证' then cert_code end",
            "applicant_type_label = '自然人' or cert_type_label = '身份证'",
        )) }} as is_applicant_person
    from current_cases
    {{ registry_party_joins(
        "case when cert_type_label is distinct from '身份证' then cert_code end",
        "util.clean_name(payload ->> 'applicant_name')",
    ) }}
),

renamed as (
    select
        record_id as case_id,
        util.clean_code(payload ->> 'service_item_id') as service_item_id,
        {{ dept_columns('dept_code') }}
        applicant_type_label,
        {{ open_code('gov_service.cases.applicant_type', "applicant_type_label", 'applicant_type') }},
        is_applicant_person,
        case when not is_applicant_person then util.clean_text(payload ->> 'applicant_name') end as applicant_name,
        {{ person_name_columns("payload ->> 'applicant_name'", 'applicant_name', 'is_applicant_person') }}
        cert_type_label as applicant_cert_type_label,
        {{ open_code('gov_service.cases.applicant_cert_type', "cert_type_label", 'applicant_cert_type') }},
        case when cert_type_label = '统一社会信用代码' then cert_code end as applicant_uscc,
        case when cert_type_label = '统一社会信用代码' then util.uscc_is_valid(cert_code) end as is_applicant_uscc_valid,
        case when cert_type_label = '统一社会信用代码'
            then cert_code = '00000000000000000X' end as is_applicant_uscc_placeholder,
        case
            when cert_type_label = '身份证' then deid.pseudonym(util.ric_to_18(cert_code))
            when cert_type_label <> '统一社会信用代码' then deid.pseudonym(cert_code)
        end as applicant_cert_no_pseudonym,
        case
            when cert_type_label = '身份证' then util.mask_ric(cert_code)
            when cert_type_label <> '统一社会信用代码' then left(cert_code, 1) || repeat('*', greatest(length(cert_code) - 3, 0)) || right(cert_code, 2)
        end as applicant_cert_no_masked,
        case when cert_type_label = '身份证' then util.ric_birth_year(cert_code) end as applicant_birth_year,
        case when cert_type_label = '身份证' then util.ric_is_valid(cert_code) end as is_applicant_cert_no_valid,
        {{ person_name_columns("payload ->> 'contact_name'", 'contact_name') }}
        {{ phone_columns("payload ->> 'contact_phone'", 'contact_phone') }}
        util.clean_text(payload ->> 'channel') as channel_label,
        {{ open_code('gov_service.cases.channel', "util.clean_text(payload ->> 'channel')", 'channel') }},
        util.parse_beijing_timestamp(payload ->> 'submitted_at') as submitted_at,
        util.parse_beijing_timestamp(payload ->> 'accepted_at') as accepted_at,
        util.parse_beijing_timestamp(payload ->> 'finished_at') as finished_at,
        util.clean_text(payload ->> 'status') as status_label,
        {{ open_code('gov_service.cases.status', "util.clean_text(payload ->> 'status')", 'status') }},
        util.clean_text(payload ->> 'result') as result_label,
        {{ open_code('gov_service.cases.result', "util.clean_text(payload ->> 'result')", 'result') }},
        util.to_bool(payload ->> 'is_instant') as is_instant,
        util.to_int(payload ->> 'promised_limit_days') as promised_limit_days,
        util.to_bool(payload ->> 'one_time_notice') as has_one_time_notice,
        util.to_int(payload ->> 'supplement_count') as supplement_count,
        {{ record_meta() }}
    from classified
)

select * from renamed
