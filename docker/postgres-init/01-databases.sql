-- One PostgreSQL server, two databases: `airflow` (Airflow's metadata) and `warehouse` (the data
-- warehouse), each owned by its own login role so a leaked warehouse password cannot touch
-- Airflow's metadata and the other way round.
--
-- The postgres image runs this once, as the superuser, when the data volume is empty
-- (/docker-entrypoint-initdb.d). Changing passwords later means ALTER ROLE, not editing .env alone.
-- Passwords come from the container environment through psql's \getenv (psql 15+): they are
-- never written in this file.

\set ON_ERROR_STOP on

\getenv airflow_db_password AIRFLOW_DB_PASSWORD
\getenv warehouse_db_password WAREHOUSE_DB_PASSWORD

\if :{?airflow_db_password}
\else
    do $$ begin raise exception 'AIRFLOW_DB_PASSWORD is not set in the postgres container'; end $$;
\endif
\if :{?warehouse_db_password}
\else
    do $$ begin raise exception 'WAREHOUSE_DB_PASSWORD is not set in the postgres container'; end $$;
\endif

create role airflow login password :'airflow_db_password';
create database airflow owner airflow;
-- Only Airflow connects to its metadata database.
revoke connect, temporary on database airflow from public;

-- CREATEROLE: the platform creates its own loader / transformer / analyst roles inside the
-- warehouse (domain.md §4 "Roles"); from PostgreSQL 16 on that gives no power over other roles.
-- createrole_self_grant: a role it creates is also granted back to it with SET and INHERIT, so it
-- can act as (SET ROLE) and own objects as the loader and transformer roles it made.
create role warehouse login createrole password :'warehouse_db_password';
alter role warehouse set createrole_self_grant = 'set, inherit';
create database warehouse owner warehouse;
