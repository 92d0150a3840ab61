{# 层次分析法权重 and their consistency, for analysts and the published evaluation #}
select
    scope,
    item,
    matrix_size,
    weight,
    lambda_max,
    consistency_index,
    random_index,
    consistency_ratio,
    is_consistent
from {{ ref('int_ahp__weights') }}
