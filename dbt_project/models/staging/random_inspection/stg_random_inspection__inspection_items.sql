with

source as (
    {{ incremental_current_versions('random_inspection', 'random_inspection__inspection_items', 'inspection_item_id') }}
),

current_items as (
    select * from source where not is_deleted
),

renamed as (
    select
        record_id as inspection_item_id,
        util.clean_text(payload ->> 'item_name') as item_name,
        {{ dept_columns('dept_code') }}
        util.clean_text(payload ->> 'category') as category_label,
        case util.clean_text(payload ->> 'category')
            when '一般检查事项' then 'general'
            when '重点检查事项' then 'key'
        end as category,
        {{ record_meta() }}
    from current_items
)

select * from renamed
