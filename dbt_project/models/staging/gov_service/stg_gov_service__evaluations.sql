{# Incremental (merge on evaluation_id, tombstones deleted): see incremental_current_versions. #}
with

source as (
    {{ incremental_current_versions('gov_service', 'gov_service__evaluations', 'evaluation_id') }}
),

current_evaluations as (
    select * from source where not is_deleted
),

renamed as (
    select
        record_id as evaluation_id,
        util.clean_code(payload ->> 'case_id') as case_id,
        {{ dept_columns('dept_code') }}
        util.clean_text(payload ->> 'channel') as channel_label,
        {{ open_code('gov_service.evaluations.channel', "util.clean_text(payload ->> 'channel')", 'channel') }},
        util.to_int(payload ->> 'rating') as rating,
        util.to_int(payload ->> 'rating') <= 2 as is_negative,
        {# no names are known in an evaluation record: ID numbers, phones and titled names go #}
        util.scrub_text(util.clean_text(payload ->> 'comment'), array[]::text[]) as comment_scrubbed,
        util.parse_beijing_timestamp(payload ->> 'rated_at') as rated_at,
        util.parse_beijing_timestamp(payload ->> 'rectified_at') as rectified_at,
        {{ record_meta() }}
    from current_evaluations
)

select * from renamed
