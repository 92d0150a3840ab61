{#- Shared staging building blocks: current state of a raw table, and column groups. -#}

{#- The newest version of each record (tombstones included; callers drop them).
    The newest raw_id per record is picked on the narrow columns first and the wide rows joined
    to it: that plan lets parallel workers evaluate the (costly) column functions of the model. -#}
{% macro current_versions(relation, record_ids_from=none) %}
    select
        r.record_id,
        r.source_updated_at,
        r.is_deleted,
        r.payload,
        r._batch_id,
        r._loaded_at
    from {{ relation }} as r
    where r.raw_id in (
        select distinct on (v.record_id) v.raw_id
        from {{ relation }} as v
        {%- if record_ids_from %}
        where v.record_id in ({{ record_ids_from }})
        {%- endif %}
        order by v.record_id, v.source_updated_at desc, v.raw_id desc
    )
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
        _loaded_at,
        _batch_id
{%- endmacro %}

{#-
    Record ids with raw rows from load batches newer than the newest batch the model has merged.
    Batch ids come from one sequence and a resource's batches commit one after another (one sync
    task per system at a time, each window in one transaction), so no batch can commit behind a
    newer one; a daily run therefore recomputes exactly the records that changed.
-#}
{% macro changed_record_ids(relation) -%}
    select record_id from {{ relation }}
    where _batch_id > (select coalesce(max(_batch_id), -1) from {{ this }})
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

{#- Pre-hook of an incremental fact: drop rows whose record is no longer in its staging model (deleted at source). -#}
{% macro delete_vanished(staging_relation, key) -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as t
    where not exists (select from {{ staging_relation }} as s where s.{{ key }} = t.{{ key }})
    {%- else -%}
    select 1
    {%- endif -%}
{%- endmacro %}

{#- In an incremental fact: the staging rows merged from load batches newer than the fact's newest. -#}
{% macro newer_batches_only(alias='') -%}
    {%- if is_incremental() -%}
    {{ alias ~ '.' if alias }}_batch_id > (select coalesce(max(_batch_id), -1) from {{ this }})
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#-
    The source block of a staging model over a synced raw table, and its configuration: the model
    is incremental (merge on `key`). A run recomputes only the records with versions in load batches
    newer than the model's newest (changed_record_ids) from their full history, merges them, and
    deletes the records whose newest version is a tombstone (pre-hook); a later undelete or a late
    correction merges the record back. `dbt build --full-refresh` rebuilds everything.
-#}
{% macro incremental_current_versions(source_name, table_name, key) %}
    {{- config(
        materialized='incremental',
        unique_key=key,
        incremental_strategy='merge',
        on_schema_change='append_new_columns',
        pre_hook="{{ delete_tombstoned(source('" ~ source_name ~ "', '" ~ table_name ~ "'), '" ~ key ~ "') }}",
    ) -}}
    {%- if is_incremental() -%}
    {{ current_versions(source(source_name, table_name), changed_record_ids(source(source_name, table_name))) }}
    {%- else -%}
    {{ current_versions(source(source_name, table_name)) }}
    {%- endif -%}
{% endmacro %}

{#- An expression later CTEs read several times, evaluated once per row. PostgreSQL inlines a CTE
    into its readers and recomputes such a column for every use (a party's person test, with its
    code check, is read by four columns); a set-returning function in the select list keeps the CTE
    from being inlined, and unlike OFFSET 0 or a materialized CTE it leaves the plan parallel.
    unnest of a one-element array: exactly one row for every row, null included. -#}
{% macro computed_once(expr) -%}
    unnest(array[{{ expr }}])
{%- endmacro %}
