with

licences as (
    select * from {{ ref('fct_licences') }}
),

penalties as (
    select * from {{ ref('fct_penalties') }}
),

events as (
    {# CR01 双公示及时率: licences and penalties, by 数据来源单位 and decision date #}
    select
        'CR01' as indicator_code, dept_code, decided_on as event_on, 'licence:' || license_id as subject_key,
        (case when is_reported_on_time then 1 else 0 end)::numeric as numerator_value,
        1::numeric as denominator_value, 'count_distinct' as aggregation,
        case when dept_code is null then '部门无法解析' when is_publication_pending then '公示期限未到' end
            as excluded_reason
    from licences
    union all
    select
        'CR01', dept_code, decided_on, 'penalty:' || penalty_id, case when is_reported_on_time then 1 else 0 end, 1,
        'count_distinct',
        case when dept_code is null then '部门无法解析' when is_publication_pending then '公示期限未到' end
    from penalties
    union all
    {# CR03 信用修复告知率: publishable penalties (warning-only ones are not published) #}
    select
        'CR03', dept_code, decided_on, penalty_id, case when has_repair_notice then 1 else 0 end, 1, 'count_distinct',
        case when dept_code is null then '部门无法解析' when is_warning_only then '仅警告, 不公示' end
    from penalties
    union all
    {# CR04 信用修复率: distinct penalised parties with a successful repair #}
    select
        'CR04', dept_code, decided_on, party_key, case when has_successful_repair then 1 else 0 end, 1,
        'count_distinct',
        case when dept_code is null then '部门无法解析' end
    from penalties
),

{{ indicator_rollup('events') }}

select * from with_definitions
