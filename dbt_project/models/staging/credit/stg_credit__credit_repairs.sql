with

source as (
    {{ incremental_current_versions('credit', 'credit__credit_repairs', 'credit_repair_id') }}
),

current_repairs as (
    select * from source where not is_deleted
),

renamed as (
    select
        record_id as credit_repair_id,
        util.clean_code(payload ->> 'penalty_id') as penalty_id,
        {{ uscc_columns('uscc') }}
        util.parse_date(payload ->> 'applied_on') as applied_on,
        util.clean_text(payload ->> 'status') as status_label,
        {{ open_code('credit.credit_repairs.status', "util.clean_text(payload ->> 'status')", 'status') }},
        util.parse_date(payload ->> 'finished_on') as finished_on,
        {{ record_meta() }}
    from current_repairs
)

select * from renamed
