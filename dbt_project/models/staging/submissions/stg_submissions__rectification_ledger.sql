{# 问题整改台账: the lead official's name is personal information — pseudonym and mask only #}
with

source as (
    {# a record reported again in a later period (e.g. its status moved on): the latest period wins #}
    select distinct on (dept_code, record_id) *
    from {{ source('submissions', 'submissions__rectification_ledger_current') }}
    order by dept_code, record_id, period desc, _loaded_at desc, row_number desc
),

description_hits as (
    {{ dictionary_hits("select payload ->> 'description' from source") }}
),

renamed as (
    select
        dept_code || '|' || record_id as problem_key,
        record_id as problem_no,
        dept_code as submitting_dept_code,
        period,
        {{ scrub_free_text("payload ->> 'description'", "array[payload ->> 'lead_official']", hits='description_hits') }} as description_scrubbed,
        payload ->> 'origin' as origin_label,
        case payload ->> 'origin'
            when '效能评估' then 'evaluation'
            when '巡察' then 'inspection_tour'
            when '自查' then 'self_check'
            when '投诉' then 'complaint'
        end as origin,
        payload ->> 'responsible_dept_code' as dept_code,
        deid.pseudonym(util.clean_name(payload ->> 'lead_official')) as lead_official_pseudonym,
        util.mask_name(payload ->> 'lead_official') as lead_official_masked,
        util.parse_date(payload ->> 'first_results_due_on') as first_results_due_on,
        util.parse_date(payload ->> 'completion_due_on') as completion_due_on,
        payload ->> 'status' as status_label,
        case payload ->> 'status'
            when '未启动' then 'not_started'
            when '整改中' then 'in_progress'
            when '已整改' then 'rectified'
            when '已销号' then 'closed'
        end as status,
        util.parse_date(payload ->> 'closed_on') as closed_on,
        file_hash,
        row_number as file_row_number,
        _loaded_at
    from source
    left join description_hits on description_hits.text = payload ->> 'description'
)

select * from renamed
