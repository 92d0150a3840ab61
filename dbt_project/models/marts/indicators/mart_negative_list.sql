with

mapped as (
    select * from {{ ref('int_negative_list_items_mapped') }}
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
),

{{ indicator_rollup('events') }}

select * from with_definitions
where is_district and period_type = 'year'
