{# Incremental (merge on evaluation_id, tombstones deleted): see incremental_current_versions. #}
with

source as (
    {{ incremental_current_versions('gov_service', 'gov_service__evaluations', 'evaluation_id') }}
),

current_evaluations as (
    select * from source where not is_deleted
),

{# each distinct comment scrubbed once (a few thousand texts for ~60k evaluations a county-year) #}
comment_scrub as (
    {{ scrubbed_texts(raw_texts('gov_service', 'gov_service__evaluations', "util.clean_text(payload ->> 'comment')")) }}
),

{# materialized: the per-record columns are computed by a parallel plan of their own; joined to the
   scrubbed comments in the join below, the whole query would run in one process #}
renamed as materialized (
    select
        record_id as evaluation_id,
        util.clean_code(payload ->> 'case_id') as case_id,
        {{ dept_columns('dept_code') }}
        util.clean_text(payload ->> 'channel') as channel_label,
        {{ open_code('gov_service.evaluations.channel', "util.clean_text(payload ->> 'channel')", 'channel') }},
        util.to_int(payload ->> 'rating') as rating,
        util.to_int(payload ->> 'rating') <= 2 as is_negative,
        {# the join key only, never selected below #}
        util.clean_text(payload ->> 'comment') as comment_text,
        util.parse_beijing_timestamp(payload ->> 'rated_at') as rated_at,
        util.parse_beijing_timestamp(payload ->> 'rectified_at') as rectified_at,
        {{ record_meta() }}
    from current_evaluations
)

select
    r.evaluation_id,
    r.case_id,
    r.dept_code,
    r.dept_ref_raw,
    r.is_dept_code_valid,
    r.channel_label,
    r.channel,
    r.is_channel_mapped,
    r.rating,
    r.is_negative,
    {# no name field: the rated case's applicant or contact is caught by the name dictionary #}
    s.scrubbed as comment_scrubbed,
    r.rated_at,
    r.rectified_at,
    r.source_updated_at,
    r._loaded_at,
    r._batch_id
from renamed as r
left join comment_scrub as s on s.text = r.comment_text
