{# 违规案例: one row per case of the department's current file (a later correction supersedes in raw) #}
with

source as (
    {# a record reported again in a later period (e.g. its status moved on): the latest period wins #}
    select distinct on (dept_code, record_id) *
    from {{ source('submissions', 'submissions__violation_cases_current') }}
    order by dept_code, record_id, period desc, _loaded_at desc, row_number desc
),

summary_hits as (
    {{ dictionary_hits("select payload ->> 'summary' from source") }}
),

renamed as (
    select
        dept_code || '|' || record_id as violation_case_key,
        record_id as case_no,
        dept_code as submitting_dept_code,
        coalesce(payload ->> 'reporting_dept_code', dept_code) as dept_code,
        period,
        payload ->> 'case_type' as case_type_label,
        case payload ->> 'case_type'
            when '违规审批禁止准入事项' then 'approved_prohibited_item'
            when '清单外增设准入条件' then 'extra_entry_condition'
            when '设置隐性壁垒' then 'hidden_barrier'
            when '其他' then 'other'
        end as case_type,
        util.parse_date(payload ->> 'found_on') as found_on,
        payload ->> 'item_name' as item_name,
        payload ->> 'negative_list_code' as negative_list_code,
        payload ->> 'status' as status_label,
        case payload ->> 'status' when '处置中' then 'in_progress' when '已处置' then 'closed' end as status,
        util.parse_date(payload ->> 'closed_on') as closed_on,
        {{ scrub_free_text("payload ->> 'summary'", hits='summary_hits') }} as summary_scrubbed,
        file_hash,
        row_number as file_row_number,
        _loaded_at
    from source
    left join summary_hits on summary_hits.text = payload ->> 'summary'
)

select * from renamed
