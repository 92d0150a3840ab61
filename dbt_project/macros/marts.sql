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
    numerator_value, denominator_value, aggregation and excluded_reason (null = counted):
      'count'          each event row is its own subject (a case, a rating): numerator = rows whose
                       numerator_value > 0, denominator = rows whose denominator_value > 0;
      'count_distinct' the same, counting distinct subject_key (a subject may recur: entities, parties);
      'sum'            numerator/denominator sum the values (for means and ratios of sums).
    'count' and 'sum' events are first summed per department × month × reason, so that a mart over
    hundreds of thousands of cases expands only those sums into the four period types.
    Events without event_on cannot be placed in a period.
    Every row of int_indicators__expected for the mart's indicators (`area`, as in
    indicator_catalogue) that has no events is added with numerator, denominator and value null and
    data_status 无数据: "no data" is a row, never a 0 and never a gap.
-#}
{% macro indicator_rollup(events, area) %}
    additive_monthly as (
        select
            indicator_code,
            dept_code,
            date_trunc('month', event_on)::date as month_start,
            excluded_reason,
            coalesce(sum(case when aggregation = 'sum' then numerator_value
                else (numerator_value > 0)::int end), 0)::numeric as numerator,
            coalesce(sum(case when aggregation = 'sum' then denominator_value
                else (denominator_value > 0)::int end), 0)::numeric as denominator,
            count(*)::int as event_count
        from {{ events }}
        where aggregation in ('count', 'sum') and event_on is not null
        group by 1, 2, 3, 4
    ),

    distinct_events as (
        select * from {{ events }}
        where aggregation = 'count_distinct' and event_on is not null
    ),

    {# one row per (event or monthly sum) × period type it falls in #}
    in_periods as (
        select
            a.indicator_code, a.dept_code, a.excluded_reason, p.period_type, p.period_label, p.period_start,
            null::text as subject_key, a.numerator, a.denominator, a.event_count, false as is_distinct
        from additive_monthly as a
        cross join lateral ({{ _period_values('a.month_start') }}) as p (period_type, period_label, period_start)
        union all
        select
            e.indicator_code, e.dept_code, e.excluded_reason, p.period_type, p.period_label, p.period_start,
            e.subject_key,
            case when e.numerator_value > 0 then 1 else 0 end,
            case when e.denominator_value > 0 then 1 else 0 end,
            1, true
        from distinct_events as e
        cross join lateral ({{ _period_values('e.event_on') }}) as p (period_type, period_label, period_start)
    ),

    rolled_up as (
        select
            case when grouping(dept_code) = 1 then 'DISTRICT' else dept_code end as dept_code,
            grouping(dept_code) = 1 as is_district,
            indicator_code,
            period_type,
            period_label,
            period_start,
            (
                coalesce(sum(numerator) filter (where excluded_reason is null and not is_distinct), 0)
                + count(distinct subject_key) filter (where excluded_reason is null and is_distinct and numerator > 0)
            )::numeric as numerator,
            (
                coalesce(sum(denominator) filter (where excluded_reason is null and not is_distinct), 0)
                + count(distinct subject_key) filter (where excluded_reason is null and is_distinct and denominator > 0)
            )::numeric as denominator,
            (
                coalesce(sum(event_count) filter (where excluded_reason is not null and not is_distinct), 0)
                + count(distinct subject_key) filter (where excluded_reason is not null and is_distinct)
            )::int as excluded_count,
            string_agg(distinct excluded_reason, '；' order by excluded_reason) as excluded_reasons
        from in_periods
        {# unresolved departments count nowhere but in excluded_count of the district #}
        where dept_code is not null or excluded_reason is not null
        group by grouping sets (
            (indicator_code, period_type, period_label, period_start, dept_code),
            (indicator_code, period_type, period_label, period_start)
        )
    ),

    {# the rows the mart must have whether or not there is data (directory × periods × indicators) #}
    expected_rows as (
        select x.dept_code, x.indicator_code, x.period_type, x.period_label, x.period_start
        from {{ ref('int_indicators__expected') }} as x
        join {{ ref('indicator_catalogue') }} as xc
            on xc.indicator_code = x.indicator_code and xc.area = '{{ area }}'
    ),

    completed as (
        select * from rolled_up
        union all
        select
            x.dept_code, x.dept_code = 'DISTRICT', x.indicator_code, x.period_type, x.period_label, x.period_start,
            null::numeric, null::numeric, 0, null::text
        from expected_rows as x
        where not exists (
            select from rolled_up as r
            where r.dept_code = x.dept_code and r.indicator_code = x.indicator_code
                and r.period_type = x.period_type and r.period_label = x.period_label
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
            {# 无数据: nothing counted (no records, or every record excluded: excluded_count says why) #}
            case when r.denominator > 0 then '有数据' else '无数据' end as data_status,
            c.formula_zh as definition_zh,
            r.excluded_count,
            r.excluded_reasons,
            case when p.rule_ids is not null then '待核实' else '已发布' end as publication_status,
            p.rule_ids as provisional_rule_ids
        from completed as r
        left join {{ ref('indicator_catalogue') }} as c on c.indicator_code = r.indicator_code
        {# a blocking dataset-level failure (late feed, volume collapse) on a day of the period: 待核实;
           the district row is provisional when any department's is #}
        left join lateral (
            select string_agg(distinct pd.rule_ids, ',' order by pd.rule_ids) as rule_ids
            from {{ ref('int_quality__provisional_days') }} as pd
            where (pd.dept_code = r.dept_code or r.is_district)
                and pd.observed_on >= r.period_start
                and pd.observed_on < r.period_start + case r.period_type
                    when 'month' then interval '1 month'
                    when 'quarter' then interval '3 months'
                    when 'half_year' then interval '6 months'
                    else interval '1 year'
                end
        ) as p on true
        where r.dept_code is not null
    )
{% endmacro %}

{#-
    A fact's rows with the blocking quality rules they fail (quality_rule_ids, null when clean):
    `asset` is the relation the rule catalogue checks, `key` the fact column holding its record id.
-#}
{% macro with_quality_flags(relation, asset, key) -%}
    select f.*, q.rule_ids as quality_rule_ids
    from {{ relation }} as f
    left join {{ ref('int_quality__blocking_records') }} as q
        on q.asset = '{{ asset }}' and q.record_id = f.{{ key }}
{%- endmacro %}

{#- The month, quarter, half-year and year a date falls in: (period_type, period_label, period_start). -#}
{% macro _period_values(d) -%}
    values
        ('month', to_char({{ d }}, 'YYYY-MM'), date_trunc('month', {{ d }})::date),
        ('quarter', to_char({{ d }}, 'YYYY-"Q"Q'), date_trunc('quarter', {{ d }})::date),
        (
            'half_year',
            to_char({{ d }}, 'YYYY') || case when extract(month from {{ d }}) <= 6 then '-H1' else '-H2' end,
            make_date(extract(year from {{ d }})::int, case when extract(month from {{ d }}) <= 6 then 1 else 7 end, 1)
        ),
        ('year', to_char({{ d }}, 'YYYY'), date_trunc('year', {{ d }})::date)
{%- endmacro %}
