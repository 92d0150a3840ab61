{# 市场主体满意度调查: one row per questionnaire × dimension; respondents are legal persons (USCC in clear) #}
with

source as (
    {# a record reported again in a later period (e.g. its status moved on): the latest period wins #}
    select distinct on (dept_code, record_id) *
    from {{ source('submissions', 'submissions__satisfaction_survey_current') }}
    order by dept_code, record_id, period desc, _loaded_at desc, row_number desc
),

renamed as (
    select
        dept_code || '|' || record_id as answer_key,
        payload ->> 'questionnaire_no' as questionnaire_no,
        dept_code as submitting_dept_code,
        period,
        util.parse_date(payload ->> 'answered_on') as answered_on,
        payload ->> 'entity_uscc' as entity_uscc,
        util.uscc_is_valid(payload ->> 'entity_uscc') as is_entity_uscc_valid,
        coalesce(payload ->> 'entity_uscc' = '00000000000000000X', false) as is_entity_uscc_placeholder,
        payload ->> 'rated_dept_code' as dept_code,
        payload ->> 'dimension' as dimension_label,
        case payload ->> 'dimension'
            when '审批效率' then 'approval_efficiency'
            when '服务态度' then 'service_attitude'
            when '公开透明' then 'transparency'
            when '公平竞争' then 'fair_competition'
            when '总体' then 'overall'
        end as dimension,
        util.to_int(payload ->> 'score') as score,
        file_hash,
        row_number as file_row_number,
        _loaded_at
    from source
)

select * from renamed
