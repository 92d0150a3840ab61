{# 质量检查结果 (ops.quality_results): one row per run × rule × department; empty before the first run #}
with

source as (
    select * from {{ source('quality', 'quality_results') }}
),

renamed as (
    select
        run_id,
        rule_id,
        dept_code,
        asset,
        source,
        level,
        category,
        severity,
        success,
        evaluated_count,
        failed_count,
        failed_share,
        observed_on
    from source
)

select * from renamed
