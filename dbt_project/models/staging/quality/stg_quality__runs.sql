{# 质量检查运行 (ops.quality_runs), renamed only; empty before the first quality run #}
with

source as (
    select * from {{ source('quality', 'quality_runs') }}
),

renamed as (
    select
        run_id,
        started_at,
        finished_at,
        data_date,
        status,
        status = 'succeeded' as is_succeeded,
        {# incomplete: it could not check some relation but judged everything that existed #}
        status in ('succeeded', 'incomplete') as is_in_force
    from source
)

select * from renamed
