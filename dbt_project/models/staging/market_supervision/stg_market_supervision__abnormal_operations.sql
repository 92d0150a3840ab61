with

source as (
    {{ incremental_current_versions('market_supervision', 'market_supervision__abnormal_operations', 'abnormal_operation_id') }}
),

current_listings as (
    select * from source where not is_deleted
),

renamed as (
    select
        record_id as abnormal_operation_id,
        {{ uscc_columns('uscc') }}
        util.parse_date(payload ->> 'listed_on') as listed_on,
        util.clean_text(payload ->> 'listed_reason') as listed_reason,
        util.parse_date(payload ->> 'removed_on') as removed_on,
        util.clean_text(payload ->> 'removed_reason') as removed_reason,
        util.parse_date(payload ->> 'removed_on') is not null as is_removed,
        {{ dept_columns('authority_code', 'authority') }}
        {{ record_meta() }}
    from current_listings
)

select * from renamed
