with

source as (
    {{ incremental_current_versions('random_inspection', 'random_inspection__inspectors', 'inspector_id') }}
),

current_inspectors as (
    select * from source where not is_deleted
),

renamed as (
    select
        record_id as inspector_id,
        {{ person_name_columns("payload ->> 'name'", 'inspector_name') }}
        {{ ric_columns("payload ->> 'cert_no'", 'cert_no', 'inspector') }}
        util.clean_code(payload ->> 'badge_no') as badge_no,
        {{ dept_columns('dept_code') }}
        {{ phone_columns("payload ->> 'phone'", 'phone') }}
        {{ record_meta() }}
    from current_inspectors
)

select * from renamed
