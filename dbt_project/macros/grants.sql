{#
    Access per layer (domain.md §4): staging and intermediate are for the transformer only; marts
    are readable by analyst. Run on-run-end; safe before any mart exists.
#}
{% macro grant_layer_access() %}
set role {{ target.role or 'transformer' }};
do $do$
declare
    s text;
begin
    foreach s in array array['staging', 'intermediate', 'util'] loop
        if exists (select from pg_namespace where nspname = s) then
            execute format('revoke all on schema %I from public', s);
            execute format('revoke all on schema %I from analyst', s);
            execute format('revoke all on all tables in schema %I from public, analyst', s);
        end if;
    end loop;
end
$do$;
{{ grant_marts_to_analyst() }}
{% endmacro %}

{% macro grant_marts_to_analyst() %}
do $do$
begin
    if exists (select from pg_namespace where nspname = 'marts') then
        grant usage on schema marts to analyst;
        grant select on all tables in schema marts to analyst;
        alter default privileges for role transformer in schema marts grant select on tables to analyst;
    end if;
end
$do$;
{% endmacro %}
