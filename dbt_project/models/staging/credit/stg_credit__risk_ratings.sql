with

source as (
    {{ incremental_current_versions('credit', 'credit__risk_ratings', 'risk_rating_id') }}
),

current_ratings as (
    select * from source where not is_deleted
),

renamed as (
    select
        record_id as risk_rating_id,
        {{ uscc_columns('uscc') }}
        util.clean_text(payload ->> 'risk_level') as risk_level_label,
        {# 'A' or 'A 低风险': the letter is the code #}
        substring(util.clean_code(payload ->> 'risk_level') from '^([ABCD])') as risk_level,
        util.parse_date(payload ->> 'rated_on') as rated_on,
        {{ record_meta() }}
    from current_ratings
)

select * from renamed
