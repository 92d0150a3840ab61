{{ config(severity='warn') }}
{# warns while the department directory has not been loaded: every department stays unresolved #}
select 'raw.directory__departments is empty or missing' as problem
where not exists (select 1 from {{ ref('stg_directory__departments') }})
