{#-
    The name dictionary: every person name the raw layer knows, from every source and template
    (applicants and contacts, 法定代表人 and 经营者, parties of penalties and licences, inspectors,
    complainants, responsible leaders), every version. Used by scrub_free_text on every free-text
    field. Kept in schema deid, readable only by transformer and loader (grant below; analysts have
    no usage on the schema). Only plausible full names: 2–4 Chinese characters starting with a 百家姓
    surname (a compound one needs a given name after it), not a common word (cn_name_stopwords) and
    not part of a stock phrase (stock_phrases).
-#}
{{ config(alias='person_names') }}

{%- set compound = cn_compound_surnames() %}
{%- set single = cn_single_surnames() %}

with

{# one scan per raw table: its name fields side by side (null where the party is no person) #}
candidates as (
    select c.name, c.field
    from {{ source('gov_service', 'gov_service__cases') }} as r
    cross join lateral (values
        (r.payload ->> 'contact_name', 'gov_service.cases.contact_name'),
        (
            case when util.clean_text(r.payload ->> 'applicant_type') = '自然人'
                or util.clean_text(r.payload ->> 'applicant_cert_type') = '身份证'
                then r.payload ->> 'applicant_name' end,
            'gov_service.cases.applicant_name'
        )
    ) as c (name, field)
    union all
    select payload ->> 'legal_rep_name', 'market_supervision.entities.legal_rep_name'
    from {{ source('market_supervision', 'market_supervision__entities') }}
    union all
    select c.name, c.field
    from {{ source('credit', 'credit__admin_licenses') }} as r
    cross join lateral (values
        (r.payload ->> 'legal_rep_name', 'credit.admin_licenses.legal_rep_name'),
        (
            case when util.clean_text(r.payload ->> 'party_category') = '自然人'
                or util.clean_text(r.payload ->> 'cert_type') = '身份证'
                then r.payload ->> 'party_name' end,
            'credit.admin_licenses.party_name'
        )
    ) as c (name, field)
    union all
    select c.name, c.field
    from {{ source('credit', 'credit__admin_penalties') }} as r
    cross join lateral (values
        (r.payload ->> 'legal_rep_name', 'credit.admin_penalties.legal_rep_name'),
        (
            case when util.clean_text(r.payload ->> 'party_category') = '自然人'
                or util.clean_text(r.payload ->> 'cert_type') = '身份证'
                then r.payload ->> 'party_name' end,
            'credit.admin_penalties.party_name'
        )
    ) as c (name, field)
    union all
    select payload ->> 'name', 'random_inspection.inspectors.name'
    from {{ source('random_inspection', 'random_inspection__inspectors') }}
    union all
    select payload ->> 'complainant_name', 'submissions.barrier_complaints.complainant_name'
    from {{ source('submissions', 'submissions__barrier_complaints_current') }}
    union all
    select payload ->> 'lead_official', 'submissions.rectification_ledger.lead_official'
    from {{ source('submissions', 'submissions__rectification_ledger_current') }}
),

{# materialized and distinct: each name is cleaned and judged once, however many versions carry it #}
cleaned as materialized (
    select distinct util.clean_name(name) as name, field
    from candidates
    where name is not null
),

plausible as (
    select name, field
    from cleaned
    where name ~ '^[\u4e00-\u9fa5]{2,4}$'
        and (
            (length(name) >= 3 and left(name, 2) = any ({{ sql_text_array(compound) }}))
            or left(name, 1) = any ({{ sql_text_array(single) }})
        )
        and name <> all ({{ sql_text_array(cn_name_stopwords()) }})
),

{#- stock phrases: a free text delivered verbatim 20 times or more is ordinary language, and a
    "name" inside one ("流程清晰" holds 程清) is a word — the title patterns still catch a real name there -#}
stock_phrases as (
    select text
    from (
        select util.clean_name(payload ->> 'comment') as text
        from {{ source('gov_service', 'gov_service__evaluations') }}
        union all
        select util.clean_name(payload ->> 'content')
        from {{ source('credit', 'credit__admin_licenses') }}
    ) as t
    where text is not null
    group by text
    having count(*) >= 20
),

stock_words as (
    select distinct substr(p.text, i, l.n) as word
    from stock_phrases as p
    cross join lateral generate_series(1, length(p.text) - 1) as i
    cross join (values (2), (3), (4)) as l (n)
),

dictionary as (
    select name, array_agg(distinct field order by field) as fields
    from plausible
    where name not in (select word from stock_words)
    group by name
)

select * from dictionary
