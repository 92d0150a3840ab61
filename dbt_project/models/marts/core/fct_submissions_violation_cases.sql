{# 违规案例 (部门报送): one row per case, attributed to its 报送单位 #}
with

cases as (
    select * from {{ ref('stg_submissions__violation_cases') }}
)

select
    violation_case_key,
    case_no,
    dept_code,
    submitting_dept_code,
    period,
    case_type,
    negative_list_code,
    found_on,
    status,
    status = 'closed' as is_closed,
    closed_on,
    case when closed_on is not null then closed_on - found_on end as days_to_close
from cases
