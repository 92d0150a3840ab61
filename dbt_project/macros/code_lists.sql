{#-
    Open code lists (issue #9): a source label is kept as received (`<col>_label`, cleaned by the
    caller), mapped to its canonical code through the operator-maintained seed `code_lists`
    (field, label, code), and a label the seed does not know becomes `other` with
    `is_<col>_mapped = false` — never a null that fails the build. The quality rules report unmapped
    labels to the department that sent them. Emits two columns, `<col>` and `is_<col>_mapped`
    (both null when no label arrived). The CASE is written from the seed when the model runs, so a
    seed change reaches records staging recomputes (older ones with --full-refresh).
-#}
{% macro open_code(field, label_expr, column) -%}
    {%- set seed = ref('code_lists') -%}
    {%- set pairs = [] -%}
    {%- if execute -%}
        {%- set rows = run_query("select label, code from " ~ seed ~ " where field = '" ~ field ~ "' order by label") -%}
        {%- for row in rows -%}
            {%- do pairs.append((row[0] | replace("'", "''"), row[1] | replace("'", "''"))) -%}
        {%- endfor -%}
        {%- if not pairs -%}
            {{ exceptions.raise_compiler_error("code_lists has no labels for " ~ field) }}
        {%- endif -%}
    {%- endif -%}
    {#- a simple CASE and `= any`: the label expression is evaluated once per row, not once per label #}
    case ({{ label_expr }})
            {%- for label, code in pairs %}
            when '{{ label }}' then '{{ code }}'
            {%- endfor %}
            else case when ({{ label_expr }}) is not null then 'other' end
        end as {{ column }},
        ({{ label_expr }}) = any ({{ sql_text_array(pairs | map('first') | list) }}) as is_{{ column }}_mapped
{%- endmacro %}
