{# 隐性壁垒投诉: the complainant is a person — pseudonym and mask only; the summary is scrubbed #}
with

source as (
    {# a record reported again in a later period (e.g. its status moved on): the latest period wins #}
    select distinct on (dept_code, record_id) *
    from {{ source('submissions', 'submissions__barrier_complaints_current') }}
    order by dept_code, record_id, period desc, _loaded_at desc, row_number desc
),

summary_hits as (
    {{ dictionary_hits("select payload ->> 'summary' from source") }}
),

renamed as (
    select
        dept_code || '|' || record_id as complaint_key,
        record_id as complaint_no,
        dept_code as submitting_dept_code,
        period,
        util.parse_date(payload ->> 'accepted_on') as accepted_on,
        payload ->> 'channel' as channel_label,
        case payload ->> 'channel'
            when '12345' then 'hotline_12345'
            when '门户网站' then 'portal'
            when '现场' then 'on_site'
            when '其他' then 'other'
        end as channel,
        deid.pseudonym(util.clean_name(payload ->> 'complainant_name')) as complainant_name_pseudonym,
        util.mask_name(payload ->> 'complainant_name') as complainant_name_masked,
        deid.pseudonym(util.phone_normalize(payload ->> 'complainant_phone')) as complainant_phone_pseudonym,
        util.mask_phone(payload ->> 'complainant_phone') as complainant_phone_masked,
        payload ->> 'involved_dept_code' as dept_code,
        {{ scrub_free_text("payload ->> 'summary'", "array[payload ->> 'complainant_name']", hits='summary_hits') }} as summary_scrubbed,
        util.parse_date(payload ->> 'transferred_on') as transferred_on,
        util.parse_date(payload ->> 'closed_on') as closed_on,
        util.parse_date(payload ->> 'replied_on') as replied_on,
        file_hash,
        row_number as file_row_number,
        _loaded_at
    from source
    left join summary_hits on summary_hits.text = payload ->> 'summary'
)

select * from renamed
