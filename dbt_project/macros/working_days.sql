{#
    Working-day arithmetic on the State Council calendar (int_calendar__days; domain.md §2).
    int_calendar__days numbers the working days (workday_seq = working days up to and including
    the date), so both helpers are one or two index lookups.

    working_days_between(start_date_expr, end_date_expr):
        the number of working days d with start < d <= end, i.e. counted from the day after the
        start up to and including the end ("N 个工作日内" counted from the day after the decision).
        Example: decided Thursday 2025-09-25, published Thursday 2025-10-09 → 5 working days
        (09-26, 09-28 Sunday 调休上班, 09-29, 09-30, 10-09; 10-01..08 are National Day).
        0 when end = start; negative (the count the other way round, negated) when end < start;
        null when either date is null or outside the calendar.

    add_working_days(start_date_expr, n_expr):
        the n-th working day after the start (n >= 1; null for n < 0), i.e. the smallest date e with
        working_days_between(start, e) = n; the start itself for n = 0; null for a null input or
        beyond the calendar. "Published within n working days" ⇔ published_on <= add_working_days(decided_on, n).
#}
{% macro workday_seq(date_expr) -%}
    (select cal.workday_seq from {{ ref('int_calendar__days') }} as cal where cal.calendar_date = ({{ date_expr }})::date)
{%- endmacro %}

{% macro working_days_between(start_date_expr, end_date_expr) -%}
    ({{ workday_seq(end_date_expr) }} - {{ workday_seq(start_date_expr) }})
{%- endmacro %}

{% macro add_working_days(start_date_expr, n_expr) -%}
    (case
        when ({{ n_expr }}) < 0 then null
        when ({{ n_expr }}) = 0 then (select cal.calendar_date from {{ ref('int_calendar__days') }} as cal where cal.calendar_date = ({{ start_date_expr }})::date)
        else (
            select min(cal.calendar_date) from {{ ref('int_calendar__days') }} as cal
            where cal.workday_seq = {{ workday_seq(start_date_expr) }} + ({{ n_expr }})
        )
    end)
{%- endmacro %}
