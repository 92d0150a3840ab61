{# 市场主体满意度调查 (部门报送): one row per questionnaire × dimension, attributed to the rated department #}
with

answers as (
    select * from {{ ref('stg_submissions__satisfaction_survey') }}
)

select
    answer_key,
    questionnaire_no,
    dept_code,
    submitting_dept_code,
    period,
    answered_on,
    case when is_entity_uscc_valid then entity_uscc end as entity_uscc,
    dimension,
    score
from answers
