{# the newest finished quality run (succeeded, or incomplete: it judged everything that existed, and its missing-feed findings are the newest truth): its verdicts are what the indicator marts enforce #}
select run_id, data_date, finished_at
from {{ ref('stg_quality__runs') }}
where is_in_force
order by finished_at desc nulls last, run_id desc
limit 1
