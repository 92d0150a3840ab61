{#
    隐性壁垒投诉 (部门报送): one row per complaint, attributed to the department complained about
    (涉及单位). Fed back within 10 (calendar) days of acceptance (domain.md §2, seed document 阳西县);
    a complaint without feedback whose 10 days run past the newest submission is not late yet.
#}
with

complaints as (
    select * from {{ ref('stg_submissions__barrier_complaints') }}
),

as_of as (
    select max(({{ beijing_date('_loaded_at') }})) as as_of_on from complaints
)

select
    c.complaint_key,
    c.complaint_no,
    c.dept_code,
    c.submitting_dept_code,
    c.period,
    c.channel,
    c.accepted_on,
    c.transferred_on,
    c.closed_on,
    c.replied_on,
    c.replied_on - c.accepted_on as days_to_reply,
    case
        when c.accepted_on is null then null
        when c.replied_on is null and c.accepted_on + 10 >= a.as_of_on then null
        else c.replied_on is not null and c.replied_on <= c.accepted_on + 10
    end as is_replied_in_time,
    coalesce(c.replied_on is null and c.accepted_on + 10 >= a.as_of_on, false) as is_reply_pending
from complaints as c
cross join as_of as a
