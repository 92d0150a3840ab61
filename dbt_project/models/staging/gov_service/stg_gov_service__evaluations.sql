{# Incremental (merge on evaluation_id, tombstones deleted): see incremental_current_versions. #}
with

source as (
    {{ incremental_current_versions('gov_service', 'gov_service__evaluations', 'evaluation_id') }}
),

current_evaluations as (
    select * from source where not is_deleted
),

comment_hits as (
    {{ dictionary_hits(raw_texts('gov_service', 'gov_service__evaluations', "util.clean_text(payload ->> 'comment')")) }}
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
        {# no name field: the rated case's applicant or contact is caught by the name dictionary #}
        {{ scrub_free_text("util.clean_text(payload ->> 'comment')", hits='comment_hits') }} as comment_scrubbed,
        util.parse_beijing_timestamp(payload ->> 'rated_at') as rated_at,
        util.parse_beijing_timestamp(payload ->> 'rectified_at') as rectified_at,
        {{ record_meta() }}
    from current_evaluations
    left join comment_hits on comment_hits.text = util.clean_text(payload ->> 'comment')
)

select * from renamed
