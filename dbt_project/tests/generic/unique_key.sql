{#
    A model's key over several columns, without dbt_utils: fails on every key value that appears
    more than once or has a null part. For one column, `unique` + `not_null` say the same.
#}
{% test unique_key(model, columns) %}
select
    {{ columns | join(', ') }},
    count(*) as rows_with_key
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
    or {% for c in columns %}bool_or({{ c }} is null){% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}
