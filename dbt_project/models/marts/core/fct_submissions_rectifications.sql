{#
    问题整改台账 (部门报送): one row per problem, attributed to the 责任单位. Rectified = 已整改 or
    已销号; overdue = not rectified after its 整改到位时限 as of the newest submission.
#}
with

problems as (
    select * from {{ ref('stg_submissions__rectification_ledger') }}
),

as_of as (
    select max(({{ beijing_date('_loaded_at') }})) as as_of_on from problems
)

select
    p.problem_key,
    p.problem_no,
    p.dept_code,
    p.submitting_dept_code,
    p.period,
    p.origin,
    p.status,
    p.status in ('rectified', 'closed') as is_rectified,
    p.first_results_due_on,
    p.completion_due_on,
    p.closed_on,
    coalesce(p.status not in ('rectified', 'closed') and p.completion_due_on < a.as_of_on, false) as is_overdue
from problems as p
cross join as_of as a
