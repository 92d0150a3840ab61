with

penalties as (
    select * from {{ ref('stg_credit__admin_penalties') }}
),

repairs as (
    select * from {{ ref('stg_credit__credit_repairs') }}
),

depts as (
    select * from {{ ref('int_department_refs_resolved') }}
),

repaired as (
    select penalty_id, bool_or(status = 'repaired') as has_successful_repair, count(*) as repair_application_count
    from repairs
    group by penalty_id
),

dated as (
    select
        p.*,
        d.dept_code as resolved_dept_code,
        {{ beijing_date('p.reported_at') }} as reported_on,
        coalesce(r.has_successful_repair, false) as has_successful_repair,
        coalesce(r.repair_application_count, 0)::int as repair_application_count
    from penalties as p
    left join depts as d on d.dept_ref_key = {{ dept_ref_key('p.dept_code', 'p.dept_ref_raw') }}
    left join repaired as r on r.penalty_id = p.penalty_id
),

as_of as (
    {# the newest source update: records whose deadline is after it cannot be late yet #}
    select max({{ beijing_date('source_updated_at') }}) as as_of_on from {{ ref('stg_credit__admin_penalties') }}
),

final as (
    select
        penalty_id,
        resolved_dept_code as dept_code,
        case when is_uscc_valid then uscc end as uscc,
        {# the party: its USCC when valid, else the pseudonymised ID number, else the record #}
        coalesce(
            case when is_uscc_valid then uscc end,
            cert_no_pseudonym,
            'penalty:' || penalty_id
        ) as party_key,
        party_category,
        is_party_person,
        coalesce(is_warning_only, false) as is_warning_only,
        fine_amount_yuan,
        confiscated_amount_yuan,
        decided_on,
        reported_on,
        {{ working_days_between('decided_on', 'reported_on') }} as publication_lag_working_days,
        case
            when decided_on is null then null
            when reported_on is null and {{ add_working_days('decided_on', 7) }} > as_of_on then null
            else reported_on is not null and reported_on <= {{ add_working_days('decided_on', 7) }}
        end as is_reported_on_time,
        coalesce(reported_on is null and {{ add_working_days('decided_on', 7) }} > as_of_on, false)
            as is_publication_pending,
        coalesce(has_repair_notice, false) as has_repair_notice,
        has_successful_repair,
        repair_application_count
    from dated
    cross join as_of
)

select * from final
