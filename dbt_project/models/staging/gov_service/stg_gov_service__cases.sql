{# Incremental (merge on case_id, tombstones deleted): see incremental_current_versions. #}
with

source as (
    {{ incremental_current_versions('gov_service', 'gov_service__cases', 'case_id') }}
),

current_cases as (
    select
        *,
        util.clean_text(payload ->> 'applicant_type') as applicant_type_label,
        util.clean_text(payload ->> 'applicant_cert_type') as cert_type_label,
        util.clean_code(payload ->> 'applicant_cert_no') as cert_code
    from source
    where not is_deleted
),

classified as (
    select
        current_cases.*,
        {# a 个体工商户 applying as 法人 is still a person, so 法人 alone establishes nothing: the
           applicant is an organisation only by a valid non-92 code or the registry (code, then name) #}
        {{ party_is_person(
            "case when cert_type_label is distinct from '身份证' then cert_code end",
            "applicant_type_label = '自然人' or cert_type_label = '身份证'",
        ) }} as is_applicant_person
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
        case applicant_type_label
            when '自然人' then 'natural_person'
            when '法人' then 'legal_person'
        end as applicant_type,
        is_applicant_person,
        case when not is_applicant_person then util.clean_text(payload ->> 'applicant_name') end as applicant_name,
        {{ person_name_columns("payload ->> 'applicant_name'", 'applicant_name', 'is_applicant_person') }}
        cert_type_label as applicant_cert_type_label,
        case cert_type_label
            when '身份证' then 'resident_id_card'
            when '统一社会信用代码' then 'uscc'
            when '其他' then 'other'
        end as applicant_cert_type,
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
        case util.clean_text(payload ->> 'channel')
            when '窗口' then 'counter'
            when '网上' then 'online'
            when '移动端' then 'mobile'
            when '自助终端' then 'self_service_terminal'
        end as channel,
        util.parse_beijing_timestamp(payload ->> 'submitted_at') as submitted_at,
        util.parse_beijing_timestamp(payload ->> 'accepted_at') as accepted_at,
        util.parse_beijing_timestamp(payload ->> 'finished_at') as finished_at,
        util.clean_text(payload ->> 'status') as status_label,
        case util.clean_text(payload ->> 'status')
            when '在办' then 'in_progress'
            when '办结' then 'finished'
            when '不予受理' then 'not_accepted'
            when '补正' then 'supplement_requested'
            when '撤回' then 'withdrawn'
        end as status,
        util.clean_text(payload ->> 'result') as result_label,
        case util.clean_text(payload ->> 'result')
            when '准予' then 'approved'
            when '不予' then 'rejected'
        end as result,
        util.to_bool(payload ->> 'is_instant') as is_instant,
        util.to_int(payload ->> 'promised_limit_days') as promised_limit_days,
        util.to_bool(payload ->> 'one_time_notice') as has_one_time_notice,
        util.to_int(payload ->> 'supplement_count') as supplement_count,
        {{ record_meta() }}
    from classified
)

select * from renamed
