{#- Building blocks of the fact and indicator marts. -#}

{#- A department reference as written by a source → the key looked up in int_department_refs_resolved. -#}
{% macro dept_ref_key(code_expr, raw_expr) -%}
    coalesce({{ code_expr }}, util.clean_name({{ raw_expr }}))
{%- endmacro %}

{#- A timestamptz → its date in Beijing time (domain.md §2). -#}
{% macro beijing_date(ts_expr) -%}
    (({{ ts_expr }}) at time zone 'Asia/Shanghai')::date
{%- endmacro %}

{#-
    indicator_rollup(events): one row per department × indicator × period, plus district rows
    (dept_code = 'DISTRICT'). `events` has: indicator_code, dept_code, event_on, subject_key,
    numerator_value, denominator_value, aggregation ('count_distinct': numerator/denominator count
    distinct subject_key where the value > 0; 'sum': they sum the values, for means), and
    excluded_reason (null = counted). Events without event_on cannot be placed in a period.
-#}
{% macro indicator_rollup(events) %}
    events_in_periods as (
        select
            e.*,
            p.period_type,
            p.period_label,
            p.period_start
        from {{ events }} as e
        cross join lateral (
            values
                ('month', to_char(e.event_on, 'YYYY-MM'), date_trunc('month', e.event_on)::date),
                ('quarter', to_char(e.event_on, 'YYYY-"Q"Q'), date_trunc('quarter', e.event_on)::date),
                (
                    'half_year',
                    to_char(e.event_on, 'YYYY') || case when extract(month from e.event_on) <= 6 then '-H1' else '-H2' end,
                    make_date(extract(year from e.event_on)::int, case when extract(month from e.event_on) <= 6 then 1 else 7 end, 1)
                ),
                ('year', to_char(e.event_on, 'YYYY'), date_trunc('year', e.event_on)::date)
        ) as p (period_type, period_label, period_start)
        where e.event_on is not null
    ),

    rolled_up as (
        select
            case when grouping(dept_code) = 1 then 'DISTRICT' else dept_code end as dept_code,
            grouping(dept_code) = 1 as is_district,
            indicator_code,
            period_type,
            period_label,
            period_start,
            case max(aggregation)
                when 'sum' then coalesce(sum(numerator_value) filter (where excluded_reason is null), 0)
                else count(distinct subject_key) filter (where excluded_reason is null and numerator_value > 0)
            end::numeric as numerator,
            case max(aggregation)
                when 'sum' then coalesce(sum(denominator_value) filter (where excluded_reason is null), 0)
                else count(distinct subject_key) filter (where excluded_reason is null and denominator_value > 0)
            end::numeric as denominator,
            count(distinct subject_key) filter (where excluded_reason is not null)::int as excluded_count,
            string_agg(distinct excluded_reason, '；' order by excluded_reason) as excluded_reasons
        from events_in_periods
        {# unresolved departments count nowhere but in excluded_count of the district #}
        where dept_code is not null or excluded_reason is not null
        group by grouping sets (
            (indicator_code, period_type, period_label, period_start, dept_code),
            (indicator_code, period_type, period_label, period_start)
        )
    ),

    with_definitions as (
        select
            r.dept_code || '|' || r.indicator_code || '|' || r.period_type || '|' || r.period_label as indicator_row_id,
            r.dept_code,
            r.is_district,
            r.indicator_code,
            c.name_zh as indicator_name_zh,
            r.period_type,
            r.period_label,
            r.period_start,
            r.numerator,
            r.denominator,
            round(r.numerator / nullif(r.denominator, 0), 4) as value,
            c.formula_zh as definition_zh,
            r.excluded_count,
            r.excluded_reasons
        from rolled_up as r
        left join {{ ref('indicator_catalogue') }} as c on c.indicator_code = r.indicator_code
        where r.dept_code is not null
    )
{% endmacro %}
