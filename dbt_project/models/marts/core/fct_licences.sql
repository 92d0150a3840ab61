with

licences as (
    select * from {{ ref('stg_credit__admin_licenses') }}
),

depts as (
    select * from {{ ref('int_department_refs_resolved') }}
),

dated as (
    select
        l.*,
        d.dept_code as resolved_dept_code,
        {{ beijing_date('l.reported_at') }} as reported_on
    from licences as l
    left join depts as d on d.dept_ref_key = {{ dept_ref_key('l.dept_code', 'l.dept_ref_raw') }}
),

as_of as (
    {# the newest source update: records whose deadline is after it cannot be late yet #}
    select max({{ beijing_date('source_updated_at') }}) as as_of_on from {{ ref('stg_credit__admin_licenses') }}
),

final as (
    select
        license_id,
        resolved_dept_code as dept_code,
        service_item_id,
        case when is_uscc_valid then uscc end as uscc,
        party_category,
        license_category,
        decided_on,
        reported_on,
        {{ working_days_between('decided_on', 'reported_on') }} as publication_lag_working_days,
        {# 双公示: 7 working days from the decision (国办发〔2015〕51号) #}
        case
            when decided_on is null then null
            when reported_on is null and {{ add_working_days('decided_on', 7) }} > as_of_on then null
            else reported_on is not null and reported_on <= {{ add_working_days('decided_on', 7) }}
        end as is_reported_on_time,
        coalesce(reported_on is null and {{ add_working_days('decided_on', 7) }} > as_of_on, false)
            as is_publication_pending
    from dated
    cross join as_of
)

select * from final
