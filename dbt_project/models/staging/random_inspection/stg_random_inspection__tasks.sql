with

source as (
    {{ incremental_current_versions('random_inspection', 'random_inspection__tasks', 'task_id') }}
),

current_tasks as (
    select * from source where not is_deleted
),

renamed as (
    select
        record_id as task_id,
        util.clean_code(payload ->> 'plan_id') as plan_id,
        {{ dept_columns('lead_dept_code', 'lead_dept') }}
        {# codes where the source wrote codes; names and aliases are resolved in intermediate #}
        array(
            select util.clean_code(x)
            from jsonb_array_elements_text(coalesce(payload -> 'joint_dept_codes', '[]'::jsonb)) as x
            where util.clean_code(x) ~ '^[0-9A-Z]{18}$'
        ) as joint_dept_codes,
        {{ json_text_array('joint_dept_codes') }} as joint_dept_refs_raw,
        coalesce(jsonb_array_length(payload -> 'joint_dept_codes') > 0, false) as is_joint,
        array(
            select util.clean_code(x)
            from jsonb_array_elements_text(coalesce(payload -> 'inspection_item_ids', '[]'::jsonb)) as x
        ) as inspection_item_ids,
        util.to_int(payload ->> 'sample_size') as sample_size,
        util.to_bool(payload ->> 'risk_based') as is_risk_based,
        util.parse_date(payload ->> 'starts_on') as starts_on,
        util.parse_date(payload ->> 'ends_on') as ends_on,
        util.clean_text(payload ->> 'status') as status_label,
        {{ open_code('random_inspection.tasks.status', "util.clean_text(payload ->> 'status')", 'status') }},
        {{ record_meta() }}
    from current_tasks
)

select * from renamed
