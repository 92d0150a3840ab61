{#
    综合评价 per department (and the district) × period: 层次分析法 weights (int_ahp__weights) and a
    模糊综合评价 grade (domain.md §1). Each indicator value gets a membership in 优/良/中/差 from
    its catalogue thresholds (piecewise linear: full 优 at or beyond the 优 threshold, full 良 at
    the 良 threshold, full 中 at the 中 threshold, full 差 one 良–中 step beyond it; neighbouring
    grades share in between, memberships sum to 1; lower_better indicators are mirrored). An area's
    membership is the weight-averaged membership of its indicators with a value; the overall one
    the weight-averaged memberships of the areas with a value (weights renormalised over what is
    there, and the counts say what was missing). Grade = the largest membership; score = memberships
    × grade scores (seed fuzzy_grades).
#}
with

indicator_values as (
    {% for m in ['mart_negative_list', 'mart_approval_efficiency', 'mart_service_quality', 'mart_supervision',
                 'mart_credit_supervision', 'mart_satisfaction', 'mart_rectification'] %}
    select dept_code, period_type, period_label, period_start, indicator_code, value
    from {{ ref(m) }}
    where value is not null and denominator > 0
    {{ 'union all' if not loop.last }}
    {% endfor %}
),

catalogue as (
    select * from {{ ref('indicator_catalogue') }}
),

weights as (
    select * from {{ ref('int_ahp__weights') }}
),

grades as (
    select * from {{ ref('fuzzy_grades') }}
),

oriented as (
    {# lower_better: mirror the value and the thresholds so that higher is better throughout #}
    select
        v.*,
        c.area,
        c.area_zh,
        w.weight as indicator_weight,
        case when c.direction = 'lower_better' then -1 else 1 end * v.value as x,
        case when c.direction = 'lower_better' then -1 else 1 end * c.threshold_excellent as e,
        case when c.direction = 'lower_better' then -1 else 1 end * c.threshold_good as g,
        case when c.direction = 'lower_better' then -1 else 1 end * c.threshold_fair as f
    from indicator_values as v
    join catalogue as c on c.indicator_code = v.indicator_code
    join weights as w on w.scope = c.area and w.item = v.indicator_code
),

memberships as (
    select
        *,
        case when x >= e then 1 when x > g then (x - g) / nullif(e - g, 0) else 0 end as mu_excellent,
        case
            when x >= e then 0
            when x > g then (e - x) / nullif(e - g, 0)
            when x = g then 1
            when x > f then (x - f) / nullif(g - f, 0)
            else 0
        end as mu_good,
        case
            when x >= g then 0
            when x > f then (g - x) / nullif(g - f, 0)
            when x = f then 1
            when x > f - (g - f) then (x - (f - (g - f))) / nullif(g - f, 0)
            else 0
        end as mu_fair,
        case
            when x >= f then 0
            when x > f - (g - f) then (f - x) / nullif(g - f, 0)
            else 1
        end as mu_poor
    from oriented
),

expected_per_area as (
    select scope as area, count(*) as indicators_expected from weights where scope <> 'areas' group by scope
),

by_area as (
    select
        m.dept_code,
        m.period_type,
        m.period_label,
        m.period_start,
        m.area,
        min(m.area_zh) as area_zh,
        count(*)::int as indicators_used,
        sum(m.indicator_weight * m.mu_excellent) / sum(m.indicator_weight) as mu_excellent,
        sum(m.indicator_weight * m.mu_good) / sum(m.indicator_weight) as mu_good,
        sum(m.indicator_weight * m.mu_fair) / sum(m.indicator_weight) as mu_fair,
        sum(m.indicator_weight * m.mu_poor) / sum(m.indicator_weight) as mu_poor
    from memberships as m
    where m.indicator_weight > 0
    group by 1, 2, 3, 4, 5
),

area_rows as (
    select
        a.dept_code, a.period_type, a.period_label, a.period_start,
        'area' as level, a.area, a.area_zh, w.weight,
        a.indicators_used, coalesce(x.indicators_expected, 0)::int as indicators_expected,
        a.mu_excellent, a.mu_good, a.mu_fair, a.mu_poor
    from by_area as a
    join weights as w on w.scope = 'areas' and w.item = a.area
    left join expected_per_area as x on x.area = a.area
),

overall_rows as (
    select
        dept_code, period_type, period_label, period_start,
        'overall' as level, 'overall' as area, '综合' as area_zh, 1::numeric as weight,
        count(*)::int as indicators_used,
        (select count(*) from weights where scope = 'areas')::int as indicators_expected,
        sum(weight * mu_excellent) / sum(weight) as mu_excellent,
        sum(weight * mu_good) / sum(weight) as mu_good,
        sum(weight * mu_fair) / sum(weight) as mu_fair,
        sum(weight * mu_poor) / sum(weight) as mu_poor
    from area_rows
    where weight > 0
    group by 1, 2, 3, 4
),

all_rows as (
    select * from area_rows
    union all
    select * from overall_rows
),

graded as (
    select
        r.*,
        (
            select g.grade_code from grades as g
            order by case g.grade_code
                when 'excellent' then r.mu_excellent when 'good' then r.mu_good
                when 'fair' then r.mu_fair else r.mu_poor end desc, g.grade_rank
            limit 1
        ) as grade_code,
        (
            select sum(g.grade_score * case g.grade_code
                when 'excellent' then r.mu_excellent when 'good' then r.mu_good
                when 'fair' then r.mu_fair else r.mu_poor end)
            from grades as g
        ) as score
    from all_rows as r
)

select
    g.dept_code || '|' || g.period_type || '|' || g.period_label || '|' || g.area as evaluation_row_id,
    g.dept_code,
    g.dept_code = 'DISTRICT' as is_district,
    g.period_type,
    g.period_label,
    g.period_start,
    g.level,
    g.area,
    g.area_zh,
    g.weight,
    g.indicators_used,
    g.indicators_expected,
    round(g.mu_excellent::numeric, 4) as membership_excellent,
    round(g.mu_good::numeric, 4) as membership_good,
    round(g.mu_fair::numeric, 4) as membership_fair,
    round(g.mu_poor::numeric, 4) as membership_poor,
    g.grade_code,
    gr.grade_zh,
    round(g.score::numeric, 2) as score
from graded as g
left join grades as gr on gr.grade_code = g.grade_code
