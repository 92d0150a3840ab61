with

cases as (
    {{ with_quality_flags(ref('fct_cases'), 'staging.stg_gov_service__cases', 'case_id') }}
),

items as (
    {# not records the quality rules check #}
    select *, null::text as quality_rule_ids from {{ ref('dim_service_item') }}
),

events as (
    {# AE01 平均办理时长: mean working days 受理 → 办结, over finished cases (by 办结 date) #}
    select
        'AE01' as indicator_code, dept_code, finished_on as event_on, case_id as subject_key,
        handling_working_days::numeric as numerator_value, 1::numeric as denominator_value, 'sum' as aggregation,
        case
            when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids
            when dept_code is null then '部门无法解析'
            when handling_working_days is null then '受理或办结日期缺失'
        end as excluded_reason
    from cases where is_finished
    union all
    {# AE02 按时办结率 (by 办结 date) #}
    select
        'AE02', dept_code, finished_on, case_id,
        case when is_finished_on_time then 1 else 0 end, 1, 'count',
        case
            when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids
            when dept_code is null then '部门无法解析'
            when is_finished_on_time is null then '承诺时限或办理日期缺失'
        end
    from cases where is_finished
    union all
    {# AE03 审批通过率: 准予 ÷ decided (by 办结 date, else 受理 date) #}
    select
        'AE03', dept_code, coalesce(finished_on, accepted_on), case_id,
        case when is_approved then 1 else 0 end, 1, 'count',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' end
    from cases where is_decided
    union all
    {# AE04 即办件比例 and AE05 全程网办率: all cases (by 申请 date) #}
    select
        'AE04', dept_code, submitted_on, case_id,
        case when is_instant then 1 else 0 end, 1, 'count',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' end
    from cases
    union all
    select
        'AE05', dept_code, submitted_on, case_id,
        case when is_online then 1 else 0 end, 1, 'count',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' end
    from cases
    union all
    {# AE06 承诺时限压缩比 on the item catalogue: a snapshot, dated to the start of the build year's data #}
    select
        'AE06', dept_code, (select date_trunc('year', max(submitted_on))::date from cases), service_item_id,
        (legal_limit_days - promised_limit_days)::numeric, legal_limit_days::numeric, 'sum',
        case
            when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids
            when dept_code is null then '部门无法解析'
            when coalesce(legal_limit_days, 0) = 0 or promised_limit_days is null then '无法定时限或承诺时限'
        end
    from items
),

{{ indicator_rollup('events', 'approval_efficiency') }}

select * from with_definitions
