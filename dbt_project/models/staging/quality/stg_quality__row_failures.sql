{# 行级规则的失败记录 (ops.quality_row_failures): record ids only, never personal information #}
with

source as (
    select * from {{ source('quality', 'quality_row_failures') }}
),

renamed as (
    select
        run_id,
        rule_id,
        asset,
        dept_code,
        record_id,
        severity
    from source
)

select * from renamed
