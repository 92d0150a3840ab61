{#
    数据质量记分卡: one row per department × source × day (the data date of the day's last
    succeeded or incomplete quality run), kept for every day in ops so trends can be read. On-time share = records
    (and feeds) passing the timeliness and freshness rules ÷ those evaluated by them.
#}
with

runs as (
    select
        run_id,
        data_date,
        row_number() over (partition by data_date order by finished_at desc nulls last, run_id desc) as nth_of_day
    from {{ ref('stg_quality__runs') }}
    where is_in_force
),

results as (
    select q.*, r.data_date
    from {{ ref('stg_quality__results') }} as q
    join runs as r on r.run_id = q.run_id and r.nth_of_day = 1
),

departments as (
    select dept_code, dept_name from {{ ref('dim_department') }}
)

select
    r.dept_code || '|' || r.source || '|' || r.data_date as scorecard_row_id,
    r.dept_code,
    d.dept_name,
    r.source,
    r.data_date as quality_date,
    min(r.run_id) as run_id,
    count(*)::int as rules_evaluated,
    count(*) filter (where r.success)::int as rules_passed,
    count(*) filter (where not r.success)::int as rules_failed,
    count(*) filter (where not r.success and r.severity = 'blocking')::int as blocking_rules_failed,
    coalesce(sum(r.failed_count) filter (where r.level = 'row'), 0)::bigint as failed_rows,
    coalesce(sum(r.evaluated_count) filter (where r.level = 'row'), 0)::bigint as evaluated_rows,
    round(
        1 - sum(r.failed_count) filter (where r.category in ('timeliness', 'freshness'))::numeric
            / nullif(sum(r.evaluated_count) filter (where r.category in ('timeliness', 'freshness')), 0),
        4
    ) as on_time_share,
    string_agg(r.rule_id, ',' order by r.rule_id) filter (where not r.success) as failed_rule_ids
from results as r
left join departments as d on d.dept_code = r.dept_code
group by r.dept_code, d.dept_name, r.source, r.data_date
