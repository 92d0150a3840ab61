with

source as (
    {{ incremental_current_versions('random_inspection', 'random_inspection__plans', 'plan_id') }}
),

current_plans as (
    select * from source where not is_deleted
),

renamed as (
    select
        record_id as plan_id,
        {{ dept_columns('dept_code') }}
        util.to_int(payload ->> 'year') as plan_year,
        util.clean_text(payload ->> 'name') as plan_name,
        util.parse_date(payload ->> 'created_on') as created_on,
        {{ record_meta() }}
    from current_plans
)

select * from renamed
