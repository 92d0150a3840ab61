{#
    Departments failing a blocking dataset-level rule (late feed, volume collapse) in the newest
    succeeded quality run, with the day the problem concerns: their indicators for the periods
    containing that day are marked 待核实 (provisional) instead of being published as final.
#}
select
    q.dept_code,
    coalesce(q.observed_on, r.data_date) as observed_on,
    string_agg(distinct q.rule_id, ',' order by q.rule_id) as rule_ids
from {{ ref('stg_quality__results') }} as q
join {{ ref('int_quality__latest_run') }} as r on r.run_id = q.run_id
where q.level = 'dataset' and q.severity = 'blocking' and not q.success
group by q.dept_code, coalesce(q.observed_on, r.data_date)
