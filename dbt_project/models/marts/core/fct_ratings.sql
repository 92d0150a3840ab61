{#
    Incremental: ratings of newer load batches, and those whose 15-working-day rectification window
    was still open at the last build (their verdict depends on the as-of date), are recomputed and
    merged; ratings deleted at source are removed (pre-hook).
#}
{{
    config(
        materialized='incremental',
        unique_key='evaluation_id',
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_vanished(ref('stg_gov_service__evaluations'), 'evaluation_id') }}",
    )
}}
with

evaluations as (
    select * from {{ ref('stg_gov_service__evaluations') }}
    where {{ newer_batches_only() }}
    {%- if is_incremental() %}
        or evaluation_id in (select evaluation_id from {{ this }} where is_rectification_pending)
    {%- endif %}
),

depts as (
    select * from {{ ref('int_department_refs_resolved') }}
),

dated as (
    select
        e.*,
        d.dept_code as resolved_dept_code,
        {{ beijing_date('e.rated_at') }} as rated_on,
        {{ beijing_date('e.rectified_at') }} as rectified_on
    from evaluations as e
    left join depts as d on d.dept_ref_key = {{ dept_ref_key('e.dept_code', 'e.dept_ref_raw') }}
),

as_of as (
    {# the newest source update: a 差评 whose 15 working days end after it cannot be late yet #}
    select max({{ beijing_date('source_updated_at') }}) as as_of_on from {{ ref('stg_gov_service__evaluations') }}
),

final as (
    select
        evaluation_id,
        case_id,
        resolved_dept_code as dept_code,
        channel,
        rating,
        coalesce(is_negative, rating <= 2) as is_negative,
        rated_on,
        rectified_on,
        case when rectified_on is not null then {{ working_days_between('rated_on', 'rectified_on') }} end
            as rectification_working_days,
        case
            when not coalesce(is_negative, rating <= 2) then null
            when rectified_on is null and {{ add_working_days('rated_on', 15) }} > as_of_on then null
            else rectified_on is not null and rectified_on <= {{ add_working_days('rated_on', 15) }}
        end as is_rectified_in_time,
        coalesce(
            coalesce(is_negative, rating <= 2) and rectified_on is null
            and {{ add_working_days('rated_on', 15) }} > as_of_on,
            false
        ) as is_rectification_pending,
        _batch_id
    from dated
    cross join as_of
)

select * from final
