{#
    The rows every indicator mart must have, data or not: indicator × department × period for the
    departments the indicator applies to (catalogue `applies_to`: a directory `sources` entry, a
    role, or only the district) and the district, for every period from the evaluation start
    (var indicator_periods_from, default SYNC_START_DATE) up to the data date of the newest
    quality run in force (today in Beijing before the first one). A mart row without data is
    stored as value null, data_status 无数据 — never 0, never left out. Yearly indicators
    (`periodicity` year) get year rows only.
#}
with

catalogue as (
    select indicator_code, applies_to, periodicity from {{ ref('indicator_catalogue') }}
),

departments as (
    select dept_code, dept_role, coalesce(source_names, array[]::text[]) as source_names
    from {{ ref('stg_directory__departments') }}
),

bounds as (
    select
        date_trunc('month', {{ "'" ~ var('indicator_periods_from', env_var('SYNC_START_DATE', '2026-01-01')[:10]) ~ "'" }}::date)::date as first_month,
        coalesce(
            (select max(data_date) from {{ ref('int_quality__latest_run') }}),
            (now() at time zone 'Asia/Shanghai')::date
        ) as last_day
),

months as (
    select m::date as month_start
    from bounds as b
    cross join lateral generate_series(b.first_month, b.last_day, interval '1 month') as m
),

periods as (
    select distinct p.period_type, p.period_label, p.period_start
    from months
    cross join lateral ({{ _period_values('months.month_start') }}) as p (period_type, period_label, period_start)
),

applicable as (
    select c.indicator_code, c.periodicity, d.dept_code
    from catalogue as c
    join departments as d
        on (c.applies_to like 'role:%' and d.dept_role = substr(c.applies_to, 6))
        or (c.applies_to not like 'role:%' and c.applies_to <> 'district' and c.applies_to = any(d.source_names))
    union all
    select indicator_code, periodicity, 'DISTRICT' from catalogue
)

select
    a.indicator_code,
    a.dept_code,
    p.period_type,
    p.period_label,
    p.period_start
from applicable as a
cross join periods as p
where a.periodicity = 'month' or p.period_type = 'year'
