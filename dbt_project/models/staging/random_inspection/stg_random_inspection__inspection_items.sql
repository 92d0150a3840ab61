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
        {{ open_code('random_inspection.inspection_items.category', "util.clean_text(payload ->> 'category')", 'category') }},
        {{ record_meta() }}
    from current_items
)

select * from renamed
