{{
    config(
        materialized='table',
        indexes=[
            {'columns': ['calendar_date'], 'unique': True},
            {'columns': ['workday_seq', 'calendar_date']},
        ],
    )
}}
{# a table, not a view: working_days_between() looks dates up in it row by row #}
with

generated as (
    select * from {{ ref('calendar_days') }}
),

overrides as (
    select * from {{ ref('calendar_overrides') }}
),

applied as (
    select
        g.calendar_date,
        coalesce(o.is_workday, g.is_workday) as is_workday,
        g.is_weekend,
        g.is_statutory_holiday,
        g.is_makeup_workday,
        nullif(g.holiday_name_zh, '') as holiday_name_zh,
        case when o.calendar_date is not null then 'override' else g.rule_source end as rule_source,
        o.note as override_note
    from generated as g
    left join overrides as o on o.calendar_date = g.calendar_date
),

numbered as (
    select
        *,
        {# working days up to and including this date: a working-day difference is one subtraction #}
        (count(*) filter (where is_workday) over (order by calendar_date))::int as workday_seq
    from applied
)

select * from numbered
