{#
    市场主体满意度 (部门报送的满意度调查): mean score (1–5) per rated department, overall (SAT01, all
    dimensions) and per dimension (SAT02–SAT06), by 填报日期.
#}
with

answers as (
    {{ with_quality_flags(ref('fct_submissions_satisfaction'), 'staging.stg_submissions__satisfaction_survey', 'answer_key') }}
),

events as (
    select
        'SAT01' as indicator_code, dept_code, answered_on as event_on, answer_key as subject_key,
        score::numeric as numerator_value, 1::numeric as denominator_value, 'sum' as aggregation,
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' when score is null then '得分缺失' end as excluded_reason
    from answers
    union all
    select
        case dimension
            when 'approval_efficiency' then 'SAT02'
            when 'service_attitude' then 'SAT03'
            when 'transparency' then 'SAT04'
            when 'fair_competition' then 'SAT05'
            when 'overall' then 'SAT06'
        end,
        dept_code, answered_on, answer_key, score, 1, 'sum',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' when score is null then '得分缺失' end
    from answers
    where dimension is not null
),

{{ indicator_rollup('events', 'satisfaction') }}

select * from with_definitions
