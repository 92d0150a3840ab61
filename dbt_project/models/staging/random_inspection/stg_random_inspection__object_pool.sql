with

source as (
    {{ incremental_current_versions('random_inspection', 'random_inspection__object_pool', 'object_pool_id') }}
),

current_objects as (
    select * from source where not is_deleted
),

renamed as (
    select
        record_id as object_pool_id,
        {{ uscc_columns('uscc') }}
        {{ dept_columns('dept_code') }}
        util.clean_code(payload ->> 'inspection_item_id') as inspection_item_id,
        {{ record_meta() }}
    from current_objects
)

select * from renamed
