{# the newest succeeded quality run: its verdicts are what the indicator marts enforce #}
select run_id, data_date, finished_at
from {{ ref('stg_quality__runs') }}
where is_succeeded
order by finished_at desc nulls last, run_id desc
limit 1
