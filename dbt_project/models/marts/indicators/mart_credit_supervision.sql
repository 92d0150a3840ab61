with

licences as (
    {{ with_quality_flags(ref('fct_licences'), 'staging.stg_credit__admin_licenses', 'license_id') }}
),

penalties as (
    {{ with_quality_flags(ref('fct_penalties'), 'staging.stg_credit__admin_penalties', 'penalty_id') }}
),

market_supervision_depts as (
    {# the departments the directory lists as the market-supervision source #}
    select dept_code from {{ ref('stg_directory__departments') }}
    where 'market_supervision' = any (source_names)
),

events as (
    {# CR01 双公示及时率: licences and penalties, by 数据来源单位 and decision date #}
    select
        'CR01' as indicator_code, dept_code, decided_on as event_on, 'licence:' || license_id as subject_key,
        (case when is_reported_on_time then 1 else 0 end)::numeric as numerator_value,
        1::numeric as denominator_value, 'count' as aggregation,
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' when is_publication_pending then '公示期限未到' end
            as excluded_reason
    from licences
    union all
    select
        'CR01', dept_code, decided_on, 'penalty:' || penalty_id, case when is_reported_on_time then 1 else 0 end, 1,
        'count',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' when is_publication_pending then '公示期限未到' end
    from penalties
    union all
    {# CR03 信用修复告知率: publishable penalties (warning-only ones are not published) #}
    select
        'CR03', dept_code, decided_on, penalty_id, case when has_repair_notice then 1 else 0 end, 1, 'count',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' when is_warning_only then '仅警告, 不公示' end
    from penalties
    union all
    {#
        CR02 处罚公示及时率 (市场监管口径, 总局令45号 第九条): penalties of the market-supervision
        department, except warning-only ones (not published), published within 20 working days.
        The source carries no procedure type, so 简易程序 penalties cannot be told apart: all count.
    #}
    select
        'CR02', p.dept_code, p.decided_on, p.penalty_id,
        case when p.reported_on is not null and p.reported_on <= {{ add_working_days('p.decided_on', 20) }} then 1 else 0 end,
        1, 'count',
        case
            when p.quality_rule_ids is not null then '质量规则阻断 ' || p.quality_rule_ids
            when p.is_warning_only then '仅警告, 不公示'
            {# as of the newest decision or publication the data has seen #}
            when p.reported_on is null and {{ add_working_days('p.decided_on', 20) }}
                > (select max(coalesce(reported_on, decided_on)) from penalties) then '公示期限未到'
        end
    from penalties as p
    where p.dept_code in (select dept_code from market_supervision_depts)
    union all
    {# CR04 信用修复率: distinct penalised parties with a successful repair #}
    select
        'CR04', dept_code, decided_on, party_key, case when has_successful_repair then 1 else 0 end, 1,
        'count_distinct',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' end
    from penalties
),

{{ indicator_rollup('events', 'credit_supervision') }}

select * from with_definitions
