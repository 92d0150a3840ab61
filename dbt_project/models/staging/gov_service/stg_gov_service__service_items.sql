with

source as (
    {{ incremental_current_versions('gov_service', 'gov_service__service_items', 'service_item_id') }}
),

current_items as (
    select * from source where not is_deleted
),

renamed as (
    select
        record_id as service_item_id,
        util.clean_code(payload ->> 'item_code') as item_code,
        util.clean_text(payload ->> 'item_name') as item_name,
        util.clean_text(payload ->> 'item_type') as item_type_label,
        {{ open_code('gov_service.service_items.item_type', "util.clean_text(payload ->> 'item_type')", 'item_type') }},
        {{ dept_columns('dept_code') }}
        util.to_int(payload ->> 'legal_limit_days') as legal_limit_days,
        util.to_int(payload ->> 'promised_limit_days') as promised_limit_days,
        util.to_int(payload ->> 'online_depth') as online_depth,
        util.clean_code(payload ->> 'negative_list_item_code') as negative_list_item_code,
        util.to_bool(payload ->> 'is_market_access') as is_market_access,
        {{ record_meta() }}
    from current_items
)

select * from renamed
