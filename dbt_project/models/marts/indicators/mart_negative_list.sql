with

violations as (
    {{ with_quality_flags(ref('fct_submissions_violation_cases'), 'staging.stg_submissions__violation_cases', 'violation_case_key') }}
),

mapped as (
    {# not records the quality rules check #}
    select *, null::text as quality_rule_ids from {{ ref('int_negative_list_items_mapped') }}
),

per_item as (
    select
        edition,
        item_code,
        bool_or(service_item_id is not null) as is_mapped
    from mapped
    where category_zh = '许可准入类'
    group by edition, item_code
),

events as (
    {# NL01 负面清单事项对应率: district only, dated to 1 January of the edition year #}
    select
        'NL01' as indicator_code,
        'DISTRICT'::text as dept_code,
        make_date(edition::int, 1, 1) as event_on,
        item_code as subject_key,
        (case when is_mapped then 1 else 0 end)::numeric as numerator_value,
        1::numeric as denominator_value,
        'count_distinct' as aggregation,
        null::text as excluded_reason
    from per_item
    union all
    {# NL02 违规案例处置率: submitted violation cases already 已处置, by 报送单位 and 发现日期 #}
    select
        'NL02', dept_code, found_on, violation_case_key,
        case when is_closed then 1 else 0 end, 1, 'count',
        case when quality_rule_ids is not null then '质量规则阻断 ' || quality_rule_ids when dept_code is null then '部门无法解析' end
    from violations
),

{{ indicator_rollup('events', 'negative_list') }}

select * from with_definitions
{# NL01 is a property of the district's item catalogue, read once a year #}
where indicator_code <> 'NL01' or (is_district and period_type = 'year')
