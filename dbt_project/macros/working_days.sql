{#
    Working-day arithmetic on the State Council calendar (int_calendar__days; domain.md §2).

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

    Both expand to correlated scalar subqueries on the indexed calendar table.
#}
{% macro working_days_between(start_date_expr, end_date_expr) -%}
    (case
        when ({{ start_date_expr }}) is null or ({{ end_date_expr }}) is null then null
        when (select min(cal.calendar_date) from {{ ref('int_calendar__days') }} as cal) > least(({{ start_date_expr }})::date, ({{ end_date_expr }})::date)
            or (select max(cal.calendar_date) from {{ ref('int_calendar__days') }} as cal) < greatest(({{ start_date_expr }})::date, ({{ end_date_expr }})::date)
            then null
        when ({{ end_date_expr }})::date >= ({{ start_date_expr }})::date then (
            select count(*)::int from {{ ref('int_calendar__days') }} as cal
            where cal.is_workday
                and cal.calendar_date > ({{ start_date_expr }})::date
                and cal.calendar_date <= ({{ end_date_expr }})::date
        )
        else -(
            select count(*)::int from {{ ref('int_calendar__days') }} as cal
            where cal.is_workday
                and cal.calendar_date > ({{ end_date_expr }})::date
                and cal.calendar_date <= ({{ start_date_expr }})::date
        )
    end)
{%- endmacro %}

{% macro add_working_days(start_date_expr, n_expr) -%}
    (case
        when ({{ start_date_expr }}) is null or ({{ n_expr }}) is null then null
        when ({{ n_expr }}) < 0 then null
        when ({{ n_expr }}) = 0 then ({{ start_date_expr }})::date
        else (
            select cal.calendar_date from {{ ref('int_calendar__days') }} as cal
            where cal.is_workday and cal.calendar_date > ({{ start_date_expr }})::date
            order by cal.calendar_date
            offset ({{ n_expr }}) - 1 limit 1
        )
    end)
{%- endmacro %}
