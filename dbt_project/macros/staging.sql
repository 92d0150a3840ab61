{#- Shared staging building blocks: current state of a raw table, and column groups. -#}

{#- The newest version of each record (tombstones included; callers drop them). -#}
{% macro current_versions(relation, record_ids_from=none) %}
    select distinct on (record_id)
        record_id,
        source_updated_at,
        is_deleted,
        payload,
        _loaded_at
    from {{ relation }}
    {%- if record_ids_from %}
    where record_id in ({{ record_ids_from }})
    {%- endif %}
    order by record_id, source_updated_at desc, raw_id desc
{% endmacro %}

{#- A department reference: the code when it is one, the raw text, and whether its check passes. -#}
{% macro dept_columns(field, prefix='dept') %}
        case when util.clean_code(payload ->> '{{ field }}') ~ '^[0-9A-Z]{18}$'
            then util.clean_code(payload ->> '{{ field }}') end as {{ prefix }}_code,
        util.clean_text(payload ->> '{{ field }}') as {{ prefix }}_ref_raw,
        util.uscc_is_valid(payload ->> '{{ field }}') as is_{{ prefix }}_code_valid,
{%- endmacro %}

{% macro uscc_columns(field, prefix='') %}
        util.clean_code(payload ->> '{{ field }}') as {{ prefix }}uscc,
        util.uscc_is_valid(payload ->> '{{ field }}') as is_{{ prefix }}uscc_valid,
        coalesce(util.clean_code(payload ->> '{{ field }}') = '00000000000000000X', false)
            as is_{{ prefix }}uscc_placeholder,
{%- endmacro %}

{#- A natural person's name: keyed pseudonym + mask (when `when` holds, else both null). -#}
{% macro person_name_columns(expr, prefix, when='true') %}
        case when {{ when }} then deid.pseudonym(util.clean_name({{ expr }})) end as {{ prefix }}_pseudonym,
        case when {{ when }} then util.mask_name({{ expr }}) end as {{ prefix }}_masked,
{%- endmacro %}

{#- A 身份证号: pseudonym of the 18-digit form, mask, birth year, check. -#}
{% macro ric_columns(expr, prefix, birth_prefix, when='true') %}
        case when {{ when }} then deid.pseudonym(util.ric_to_18({{ expr }})) end as {{ prefix }}_pseudonym,
        case when {{ when }} then util.mask_ric({{ expr }}) end as {{ prefix }}_masked,
        case when {{ when }} then util.ric_birth_year({{ expr }}) end as {{ birth_prefix }}_birth_year,
        case when {{ when }} then util.ric_is_valid({{ expr }}) end as is_{{ prefix }}_valid,
{%- endmacro %}

{% macro phone_columns(expr, prefix) %}
        deid.pseudonym(util.phone_normalize({{ expr }})) as {{ prefix }}_pseudonym,
        util.mask_phone({{ expr }}) as {{ prefix }}_masked,
        util.mobile_is_valid({{ expr }}) as is_{{ prefix }}_valid,
{%- endmacro %}

{#- A JSON array of strings as text[] (null stays null). -#}
{% macro json_text_array(field) -%}
    case when jsonb_typeof(payload -> '{{ field }}') = 'array'
        then array(select util.clean_text(x) from jsonb_array_elements_text(payload -> '{{ field }}') as x) end
{%- endmacro %}

{% macro record_meta() %}
        source_updated_at,
        _loaded_at
{%- endmacro %}

{#- Record ids with raw rows loaded after the model's newest _loaded_at (minus the look-back). -#}
{% macro changed_record_ids(relation) -%}
    select record_id from {{ relation }}
    where _loaded_at > (
        select coalesce(max(_loaded_at), '-infinity'::timestamptz)
            - make_interval(mins => {{ var('raw_lookback_minutes', 15) | int }})
        from {{ this }}
    )
{%- endmacro %}

{#- Pre-hook of an incremental staging model: drop records whose new newest version is a tombstone. -#}
{% macro delete_tombstoned(relation, key) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as t
    using (
        {{ current_versions(relation, changed_record_ids(relation)) }}
    ) as v
    where v.is_deleted and t.{{ key }} = v.record_id
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}
