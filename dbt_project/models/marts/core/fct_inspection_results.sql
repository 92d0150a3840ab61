with

results as (
    select * from {{ ref('stg_random_inspection__results') }}
),

tasks as (
    select * from {{ ref('fct_inspection_tasks') }}
),

as_of as (
    {# the newest source update: records whose deadline is after it cannot be late yet #}
    select max({{ beijing_date('source_updated_at') }}) as as_of_on from {{ ref('stg_random_inspection__results') }}
),

final as (
    select
        r.result_id,
        r.task_id,
        t.dept_code,
        case when r.is_uscc_valid then r.uscc end as uscc,
        r.outcome,
        r.inspected_on,
        r.published_on,
        {{ working_days_between('r.inspected_on', 'r.published_on') }} as publication_lag_working_days,
        {# results published within 20 working days of the inspection (国发〔2019〕5号 practice) #}
        case
            when r.inspected_on is null then null
            when r.published_on is null and {{ add_working_days('r.inspected_on', 20) }} > a.as_of_on then null
            else r.published_on is not null and r.published_on <= {{ add_working_days('r.inspected_on', 20) }}
        end as is_published_on_time,
        coalesce(r.published_on is null and {{ add_working_days('r.inspected_on', 20) }} > a.as_of_on, false)
            as is_publication_pending
    from results as r
    left join tasks as t on t.task_id = r.task_id
    cross join as_of as a
)

select * from final
