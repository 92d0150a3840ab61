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
        status = 'succeeded' as is_succeeded
    from source
)

select * from renamed
