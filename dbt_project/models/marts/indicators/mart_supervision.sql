with

tasks as (
    {{ with_quality_flags(ref('fct_inspection_tasks'), 'staging.stg_random_inspection__tasks', 'task_id') }}
),

results as (
    {{ with_quality_flags(ref('fct_inspection_results'), 'staging.stg_random_inspection__results', 'result_id') }}
),

coverage as (
    {# not records the quality rules check #}
    select *, null::text as quality_rule_ids from {{ ref('int_inspection_objects_covered') }}
),

plans as (
    {# not records the quality rules check #}
    select *, null::text as quality_rule_ids from {{ ref('int_inspection_plans_expected') }}
),

events as (
    {# SV02 跨部门联合抽查占比: by 发起部门 and task start date #}
    select
        'SV02' as indicator_code, dept_code, starts_on as event_on, task_id as subject_key,
        (case when is_joint then 1 else 0 end)::numeric as numerator_value, 1::numeric as denominator_value,
        'count' as aggregation,
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' end as excluded_reason
    from tasks
    union all
    {# SV05 信用+双随机应用率 #}
    select
        'SV05', dept_code, starts_on, task_id, case when is_risk_based then 1 else 0 end, 1, 'count',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' end
    from tasks
    union all
    {# SV04 抽查结果公示及时率: 20 working days after the inspection, by inspection date #}
    select
        'SV04', dept_code, inspected_on, result_id, case when is_published_on_time then 1 else 0 end, 1,
        'count',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' when is_publication_pending then '公示期限未到' end
    from results
    union all
    {# SV01 双随机抽查覆盖率: entities in the department's 检查对象名录库 inspected that year (year only) #}
    select
        'SV01', dept_code, make_date(year_number, 1, 1), uscc, case when is_inspected then 1 else 0 end, 1,
        'count_distinct', null
    from coverage
    union all
    {# SV03 抽查计划制定率: departments owning inspection items with a plan for the year (year only) #}
    select
        'SV03', dept_code, make_date(plan_year, 1, 1), dept_code, case when has_plan then 1 else 0 end, 1,
        'count_distinct', null
    from plans
),

{{ indicator_rollup('events', 'supervision') }}

select * from with_definitions
{# SV01 and SV03 are annual: their events carry 1 January, not a real date in the year #}
where indicator_code not in ('SV01', 'SV03') or period_type = 'year'
