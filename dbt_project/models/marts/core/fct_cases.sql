{#
    Incremental: the cases of load batches newer than the fact's newest are recomputed and merged;
    cases deleted at source are removed (pre-hook). A change of the item catalogue or the department
    directory reaches older cases with `dbt build --full-refresh --select fct_cases`.
#}
{{
    config(
        materialized='incremental',
        unique_key='case_id',
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_vanished(ref('stg_gov_service__cases'), 'case_id') }}",
    )
}}
with

cases as (
    select * from {{ ref('stg_gov_service__cases') }}
    where {{ newer_batches_only() }}
),

items as (
    select * from {{ ref('stg_gov_service__service_items') }}
),

depts as (
    select * from {{ ref('int_department_refs_resolved') }}
),

dated as (
    select
        c.*,
        {{ beijing_date('c.submitted_at') }} as submitted_on,
        {{ beijing_date('c.accepted_at') }} as accepted_on,
        {{ beijing_date('c.finished_at') }} as finished_on,
        coalesce(c.promised_limit_days, i.promised_limit_days) as promised_days,
        i.legal_limit_days,
        d.dept_code as resolved_dept_code
    from cases as c
    left join items as i on i.service_item_id = c.service_item_id
    left join depts as d on d.dept_ref_key = {{ dept_ref_key('c.dept_code', 'c.dept_ref_raw') }}
),

measured as (
    select
        *,
        {{ working_days_between('accepted_on', 'finished_on') }} as handling_working_days
    from dated
),

final as (
    select
        case_id,
        service_item_id,
        resolved_dept_code as dept_code,
        applicant_type,
        case when is_applicant_uscc_valid then applicant_uscc end as applicant_uscc,
        channel,
        channel in ('online', 'mobile') as is_online,
        status,
        result,
        coalesce(result in ('approved', 'rejected'), false) as is_decided,  -- an unknown result code ('other') is no decision
        coalesce(result = 'approved', false) as is_approved,
        coalesce(is_instant, false) or promised_days = 0 as is_instant,
        promised_days as promised_limit_days,
        legal_limit_days,
        submitted_on,
        accepted_on,
        finished_on,
        status = 'finished' and finished_on is not null as is_finished,
        handling_working_days,
        case when status = 'finished' and handling_working_days is not null and promised_days is not null
            then handling_working_days <= promised_days end as is_finished_on_time,
        coalesce(supplement_count, 0) as supplement_count,
        coalesce(supplement_count, 0) > 0 as needed_supplement,
        coalesce(supplement_count, 0) <= 1 and coalesce(has_one_time_notice, false) as is_one_time_notice_kept,
        _batch_id
    from measured
)

select * from final
