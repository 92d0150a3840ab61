{#
    层次分析法 weights (domain.md §1) from the operator's pairwise judgements (seed
    ahp_pairwise_comparisons: scope = 'areas' for the evaluation areas, else an area code for its
    indicators; judgement = how much more important item_a is than item_b on the 1–9 scale, e.g. 3
    or 1/3). The matrix is completed with 1 on the diagonal and reciprocals below it; weights are
    its principal eigenvector; CI = (λmax − n)/(n − 1), CR = CI/RI, consistent when CR < 0.10.
#}
with

judgements as (
    select
        scope,
        item_a,
        item_b,
        case
            when judgement ~ '^\s*1\s*/\s*[0-9.]+\s*$' then 1.0 / split_part(judgement, '/', 2)::float8
            else judgement::float8
        end as a_over_b
    from {{ ref('ahp_pairwise_comparisons') }}
),

items as (
    select scope, item, (row_number() over (partition by scope order by item))::int as position
    from (
        select scope, item_a as item from judgements
        union
        select scope, item_b from judgements
    ) as u
),

cells as (
    {# every (i, j) of each scope: the judgement, its reciprocal, or 1 on the diagonal #}
    select
        i.scope,
        i.position as row_position,
        j.position as col_position,
        coalesce(
            case when i.item = j.item then 1.0 end,
            (select a.a_over_b from judgements as a where a.scope = i.scope and a.item_a = i.item and a.item_b = j.item),
            (select 1.0 / b.a_over_b from judgements as b where b.scope = i.scope and b.item_a = j.item and b.item_b = i.item)
        ) as value
    from items as i
    join items as j on j.scope = i.scope
),

matrices as (
    select
        scope,
        count(distinct row_position)::int as n,
        bool_and(value is not null) as is_complete,
        {# a 2-D array, row by row #}
        array(
            select array_agg(c2.value order by c2.col_position)
            from cells as c2 where c2.scope = c.scope
            group by c2.row_position order by c2.row_position
        ) as matrix
    from cells as c
    group by scope
),

solved as (
    select
        scope,
        n,
        is_complete,
        case when is_complete then util.ahp_eigen(matrix) end as eigen
    from matrices
),

consistency as (
    select
        scope,
        n,
        is_complete,
        eigen,
        eigen[n + 1] as lambda_max,
        case when n > 2 then (eigen[n + 1] - n) / (n - 1) else 0 end as consistency_index,
        {# Saaty's random index for n = 3…9 (domain.md §1) #}
        case n when 3 then 0.58 when 4 then 0.90 when 5 then 1.12 when 6 then 1.24
            when 7 then 1.32 when 8 then 1.41 when 9 then 1.45 end as random_index
    from solved
)

select
    i.scope,
    i.item,
    i.position,
    c.n as matrix_size,
    round(c.eigen[i.position]::numeric, 6) as weight,
    round(c.lambda_max::numeric, 6) as lambda_max,
    round(c.consistency_index::numeric, 6) as consistency_index,
    c.random_index,
    round(case when c.n > 2 then c.consistency_index / c.random_index else 0 end::numeric, 6) as consistency_ratio,
    c.is_complete and (c.n <= 2 or c.consistency_index / c.random_index < 0.10) as is_consistent,
    c.is_complete
from items as i
join consistency as c on c.scope = i.scope
