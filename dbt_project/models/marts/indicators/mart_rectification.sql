{#
    整改 (部门报送的问题整改台账), by 责任单位 and the 整改到位时限's period:
    RC01 整改完成率 = problems rectified (已整改/已销号) ÷ problems due;
    RC02 整改超期率 = problems still open after their 整改到位时限 ÷ problems due.
#}
with

problems as (
    {{ with_quality_flags(ref('fct_submissions_rectifications'), 'staging.stg_submissions__rectification_ledger', 'problem_key') }}
),

events as (
    select
        'RC01' as indicator_code, dept_code, completion_due_on as event_on, problem_key as subject_key,
        (case when is_rectified then 1 else 0 end)::numeric as numerator_value, 1::numeric as denominator_value,
        'count' as aggregation,
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' end as excluded_reason
    from problems
    union all
    select
        'RC02', dept_code, completion_due_on, problem_key, case when is_overdue then 1 else 0 end, 1, 'count',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' end
    from problems
),

{{ indicator_rollup('events', 'rectification') }}

select * from with_definitions
