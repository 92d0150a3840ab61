with

cases as (
    {{ with_quality_flags(ref('fct_cases'), 'staging.stg_gov_service__cases', 'case_id') }}
),

ratings as (
    {{ with_quality_flags(ref('fct_ratings'), 'staging.stg_gov_service__evaluations', 'evaluation_id') }}
),

complaints as (
    {{ with_quality_flags(ref('fct_submissions_barrier_complaints'), 'staging.stg_submissions__barrier_complaints', 'complaint_key') }}
),

events as (
    {# SQ01 一次性告知率: cases that needed 补正 (by 申请 date) #}
    select
        'SQ01' as indicator_code, dept_code, submitted_on as event_on, case_id as subject_key,
        (case when is_one_time_notice_kept then 1 else 0 end)::numeric as numerator_value,
        1::numeric as denominator_value, 'count' as aggregation,
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' end as excluded_reason
    from cases where needed_supplement
    union all
    {# SQ02 满意度: mean rating (by 评价 date) #}
    select
        'SQ02', dept_code, rated_on, evaluation_id, rating, 1, 'sum',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' when rating is null then '评分缺失' end
    from ratings
    union all
    {# SQ03 差评率 #}
    select
        'SQ03', dept_code, rated_on, evaluation_id, case when is_negative then 1 else 0 end, 1, 'count',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' when rating is null then '评分缺失' end
    from ratings
    union all
    {# SQ04 差评整改率: 差评 rectified within 15 working days #}
    select
        'SQ04', dept_code, rated_on, evaluation_id, case when is_rectified_in_time then 1 else 0 end, 1,
        'count',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' when is_rectification_pending then '整改期限未到' end
    from ratings where is_negative
    union all
    {# SQ05 投诉办结及时率: hidden-barrier complaints fed back within 10 days, by 涉及单位 and 受理日期 #}
    select
        'SQ05', dept_code, accepted_on, complaint_key, case when is_replied_in_time then 1 else 0 end, 1,
        'count',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' when is_reply_pending then '反馈期限未到' end
    from complaints
),

{{ indicator_rollup('events', 'service_quality') }}

select * from with_definitions
