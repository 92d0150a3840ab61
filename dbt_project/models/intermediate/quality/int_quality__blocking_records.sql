{#
    Records failing a blocking row-level rule in the newest succeeded quality run: the indicator
    marts leave them out of numerators and denominators and count them as excluded, naming the
    rules. Nothing is deleted: the records stay in staging and the facts.
#}
{{ config(indexes=[{'columns': ['asset', 'record_id'], 'unique': True}]) }}
select
    f.asset,
    f.record_id,
    string_agg(distinct f.rule_id, ',' order by f.rule_id) as rule_ids
from {{ ref('stg_quality__row_failures') }} as f
join {{ ref('int_quality__latest_run') }} as r on r.run_id = f.run_id
where f.severity = 'blocking'
group by f.asset, f.record_id
