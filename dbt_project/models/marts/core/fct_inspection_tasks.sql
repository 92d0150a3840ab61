with

tasks as (
    select * from {{ ref('stg_random_inspection__tasks') }}
),

depts as (
    select * from {{ ref('int_department_refs_resolved') }}
),

final as (
    select
        t.task_id,
        t.plan_id,
        {# attributed to the 发起部门 #}
        d.dept_code,
        t.is_joint,
        coalesce(cardinality(t.joint_dept_refs_raw), 0)::int as joint_dept_count,
        coalesce(t.is_risk_based, false) as is_risk_based,
        t.sample_size,
        t.starts_on,
        t.ends_on,
        t.status
    from tasks as t
    left join depts as d on d.dept_ref_key = {{ dept_ref_key('t.lead_dept_code', 't.lead_dept_ref_raw') }}
)

select * from final
