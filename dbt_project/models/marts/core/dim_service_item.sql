with

items as (
    select * from {{ ref('stg_gov_service__service_items') }}
),

depts as (
    select * from {{ ref('int_department_refs_resolved') }}
),

negative_list as (
    select * from {{ ref('negative_list_items') }}
),

joined as (
    select
        i.service_item_id,
        i.item_code,
        i.item_name,
        i.item_type,
        d.dept_code,
        i.legal_limit_days,
        i.promised_limit_days,
        i.online_depth,
        i.online_depth = 4 as is_fully_online,
        i.is_market_access,
        i.negative_list_item_code,
        n.category_zh as negative_list_category_zh
    from items as i
    left join depts as d on d.dept_ref_key = {{ dept_ref_key('i.dept_code', 'i.dept_ref_raw') }}
    left join negative_list as n on n.item_code = i.negative_list_item_code
)

select * from joined
