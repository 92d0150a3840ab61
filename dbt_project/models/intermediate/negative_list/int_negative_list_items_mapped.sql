{# negative-list item ↔ 政务服务事项 ↔ 办件: one row per list item × mapped service item (items with none: one row) #}
with

items as (
    select * from {{ ref('negative_list_items') }}
),

service_items as (
    select * from {{ ref('stg_gov_service__service_items') }}
    where negative_list_item_code is not null
),

case_counts as (
    select service_item_id, count(*) as case_count
    from {{ ref('stg_gov_service__cases') }}
    group by service_item_id
),

mapped as (
    select
        i.edition || '|' || i.item_code || '|' || coalesce(s.service_item_id, '-') as item_mapping_id,
        i.edition,
        i.item_code,
        i.category_zh,
        i.item_name_zh,
        s.service_item_id,
        s.item_name as service_item_name,
        {{ dept_ref_key('s.dept_code', 's.dept_ref_raw') }} as dept_ref_key,
        coalesce(c.case_count, 0)::int as case_count
    from items as i
    left join service_items as s on s.negative_list_item_code = i.item_code
    left join case_counts as c on c.service_item_id = s.service_item_id
)

select * from mapped
