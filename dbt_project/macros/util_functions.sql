{#
    SQL helpers for normalising codes, check digits, masks and scrubbing (schema util, owned by
    transformer). Called from on-run-start; every statement is idempotent.
    Rules: domain.md §3 (codes, check digits) and §4 (de-identification).
#}
{% macro create_util_functions() %}
{# profiles.yml sets the role on connect, but a rolled-back transaction undoes SET ROLE #}
set role {{ target.role or 'transformer' }};
create schema if not exists util;
revoke all on schema util from public;

{# 全角 U+FF01–FF5E → ASCII, U+3000 → space; the two strings are built here, not typed #}
do $do$
declare
    fw text;
    hw text;
begin
    select string_agg(chr(c), '' order by c), string_agg(chr(c - 65248), '' order by c)
        into fw, hw
        from generate_series(65281, 65374) as c;
    execute format(
        'create or replace function util.to_halfwidth(value text) returns text '
        'language sql immutable strict parallel safe as %L',
        format('select translate(value, %L, %L)', fw || chr(12288), hw || ' ')
    );
end
$do$;

create or replace function util.clean_code(value text) returns text
language sql immutable strict parallel safe
as $$
    select nullif(upper(regexp_replace(util.to_halfwidth(value), '\s+', '', 'g')), '')
$$;

create or replace function util.clean_name(value text) returns text
language sql immutable strict parallel safe
as $$
    select nullif(regexp_replace(util.to_halfwidth(value), '\s+', '', 'g'), '')
$$;

create or replace function util.clean_text(value text) returns text
language sql immutable strict parallel safe
as $$
    select nullif(btrim(value, E' \t\r\n\u3000'), '')
$$;

{# GB 32100-2015: weights 3^i mod 31, check = (31 − Σ mod 31) mod 31 #}
create or replace function util.uscc_is_valid(value text) returns boolean
language sql immutable strict parallel safe
as $$
    with c as (select util.clean_code(value) as code)
    select coalesce(
        c.code ~ '^[0-9]{8}[0-9A-HJ-NPQRTUWXY]{10}$'
        and substr(
            '0123456789ABCDEFGHJKLMNPQRTUWXY',
            (31 - (
                select sum((strpos('0123456789ABCDEFGHJKLMNPQRTUWXY', substr(c.code, i::int, 1)) - 1) * w)
                from unnest(array[1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])
                    with ordinality as t (w, i)
            )::int % 31) % 31 + 1,
            1
        ) = substr(c.code, 18, 1),
        false)
    from c
$$;

create or replace function util.is_valid_ymd(y int, m int, d int) returns boolean
language sql immutable strict parallel safe
as $$
    select y between 1 and 9999 and m between 1 and 12 and d >= 1
        and d <= extract(day from (make_date(y, m, 1) + interval '1 month - 1 day'))::int
$$;

{# GB 11643-1999 check character over the first 17 digits: weights 2^(17−i) mod 11 #}
create or replace function util.ric_check_char(first17 text) returns text
language sql immutable strict parallel safe
as $$
    select case when first17 ~ '^[0-9]{17}$' then substr(
        '10X98765432',
        (
            select sum(substr(first17, i::int, 1)::int * w)
            from unnest(array[7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]) with ordinality as t (w, i)
        )::int % 11 + 1,
        1
    ) end
$$;

{# half-width, upper X, 15-digit legacy numbers → 18 digits (insert 19, compute the check) #}
create or replace function util.ric_to_18(value text) returns text
language sql immutable strict parallel safe
as $$
    with c as (select util.clean_code(value) as code)
    select case
        when c.code ~ '^[0-9]{15}$'
            then substr(c.code, 1, 6) || '19' || substr(c.code, 7, 9)
                || util.ric_check_char(substr(c.code, 1, 6) || '19' || substr(c.code, 7, 9))
        else c.code
    end
    from c
$$;

create or replace function util.ric_is_valid(value text) returns boolean
language sql immutable strict parallel safe
as $$
    with c as (select util.ric_to_18(value) as code)
    select coalesce(
        c.code ~ '^[0-9]{17}[0-9X]$'
        and util.is_valid_ymd(substr(c.code, 7, 4)::int, substr(c.code, 11, 2)::int, substr(c.code, 13, 2)::int)
        and util.ric_check_char(substr(c.code, 1, 17)) = substr(c.code, 18, 1),
        false)
    from c
$$;

{# birth year of a valid 身份证号 (generalised quasi-identifier) #}
create or replace function util.ric_birth_year(value text) returns int
language sql immutable strict parallel safe
as $$
    select case when util.ric_is_valid(value) then substr(util.ric_to_18(value), 7, 4)::int end
$$;

create or replace function util.phone_normalize(value text) returns text
language sql immutable strict parallel safe
as $$
    with d as (select regexp_replace(util.to_halfwidth(value), '[^0-9]', '', 'g') as digits)
    select nullif(case
        when d.digits ~ '^0086[0-9]{11}$' then substr(d.digits, 5)
        when d.digits ~ '^86[0-9]{11}$' then substr(d.digits, 3)
        else d.digits
    end, '')
    from d
$$;

create or replace function util.mobile_is_valid(value text) returns boolean
language sql immutable strict parallel safe
as $$
    select coalesce(util.phone_normalize(value) ~ '^1[3-9][0-9]{9}$', false)
$$;

{# 2026-03-05, 2026/03/05, 2026/3/5, 20260305 (a time part is ignored); null when it cannot #}
create or replace function util.parse_date(value text) returns date
language sql immutable strict parallel safe
as $$
    with s as (select btrim(util.to_halfwidth(value)) as v),
    p as (
        select case
            when s.v ~ '^[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}([ T][0-9:.]+)?$'
                then regexp_split_to_array(split_part(replace(s.v, 'T', ' '), ' ', 1), '[-/.]')
            when s.v ~ '^[0-9]{8}$'
                then array[substr(s.v, 1, 4), substr(s.v, 5, 2), substr(s.v, 7, 2)]
        end as ymd
        from s
    )
    select case when p.ymd is not null and util.is_valid_ymd(p.ymd[1]::int, p.ymd[2]::int, p.ymd[3]::int)
        then make_date(p.ymd[1]::int, p.ymd[2]::int, p.ymd[3]::int) end
    from p
$$;

{# a source timestamp 'YYYY-MM-DD HH:MM:SS' in Beijing time (any accepted date form, time optional) #}
create or replace function util.parse_beijing_timestamp(value text) returns timestamptz
language sql immutable strict parallel safe
as $$
    with s as (select btrim(util.to_halfwidth(value)) as v),
    t as (
        select util.parse_date(s.v) as d,
            substring(s.v from '[ T](.*)$') as hms
        from s
    )
    select case when t.d is not null
        and (t.hms is null or t.hms ~ '^([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$') then
        (t.d + coalesce(t.hms, '00:00:00')::time) at time zone 'Asia/Shanghai' end
    from t
$$;

create or replace function util.mask_ric(value text) returns text
language sql immutable strict parallel safe
as $$
    with c as (select util.ric_to_18(value) as code)
    select case
        when length(c.code) > 7 then left(c.code, 3) || repeat('*', length(c.code) - 7) || right(c.code, 4)
        when c.code is not null then repeat('*', length(c.code))
    end
    from c
$$;

create or replace function util.mask_phone(value text) returns text
language sql immutable strict parallel safe
as $$
    with c as (select util.phone_normalize(value) as p)
    select case
        when length(c.p) > 7 then left(c.p, 3) || repeat('*', length(c.p) - 7) || right(c.p, 4)
        when c.p is not null then repeat('*', length(c.p))
    end
    from c
$$;

{# keep the surname (two characters for the common compound surnames) #}
create or replace function util.mask_name(value text) returns text
language sql immutable strict parallel safe
as $$
    with c as (select util.clean_name(value) as n)
    select case
        when c.n is null then null
        when length(c.n) = 1 then '*'
        when length(c.n) >= 3 and left(c.n, 2) = any (array[
            '欧阳', '司马', '诸葛', '上官', '东方', '皇甫', '尉迟', '公孙', '慕容', '长孙',
            '宇文', '司徒', '夏侯', '轩辕', '令狐', '端木', '南宫', '独孤', '西门', '申屠'])
            then left(c.n, 2) || repeat('*', length(c.n) - 2)
        else left(c.n, 1) || repeat('*', length(c.n) - 1)
    end
    from c
$$;

{#
    Free text: ID numbers → [身份证号], mobiles (+86, spaces, dashes) → [手机号], the names known in
    the same record → their masks (longest first), and a name right after a title such as
    工作人员/当事人/经营者 → its mask.
#}
create or replace function util.scrub_text(value text, names text[]) returns text
language plpgsql immutable parallel safe
as $$
declare
    s text := value;
    n text;
    m text[];
begin
    if s is null then
        return null;
    end if;
    {# full-width digits/letters in numbers would slip past the patterns #}
    s := translate(s, '０１２３４５６７８９Ｘｘ＋－', '0123456789Xx+-');
    s := regexp_replace(s, '(?<![0-9])([0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])', '[身份证号]', 'g');
    s := regexp_replace(
        s, '(?<![0-9])((\+|00)?86[ -]?)?1[3-9][0-9]([ -]?[0-9]){8}(?![0-9])', '[手机号]', 'g');
    for n in
        select name from (
            select distinct util.clean_name(x) as name
            from unnest(coalesce(names, array[]::text[])) as x
        ) as k
        where length(name) >= 2
        order by length(name) desc, name
    loop
        s := replace(s, n, util.mask_name(n));
    end loop;
    for m in
        select regexp_matches(
            s,
            '(工作人员|经办人|联系人|当事人|经营者|负责人|法定代表人|申请人)[:：]?([\u4e00-\u9fa5]{2,3})(?=[的，,。；;、（(）)\s]|$)',
            'g')
    loop
        {# an adverb or verb right after the title is not a name #}
        continue when left(m[2], 1) = any (array['很', '的', '都', '也', '非', '对', '未', '已', '在', '不', '是', '为', '将', '把', '被', '让', '给', '和', '与', '及', '态', '热', '服', '办', '工', '说']);
        s := replace(s, m[2], util.mask_name(m[2]));
    end loop;
    return s;
end
$$;

create or replace function util.to_int(value text) returns int
language sql immutable strict parallel safe
as $$
    select case when btrim(value) ~ '^-?[0-9]{1,9}(\.0+)?$' then split_part(btrim(value), '.', 1)::int end
$$;

create or replace function util.to_numeric(value text) returns numeric
language sql immutable strict parallel safe
as $$
    select case when btrim(value) ~ '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$' then btrim(value)::numeric end
$$;

create or replace function util.to_bool(value text) returns boolean
language sql immutable strict parallel safe
as $$
    select case lower(btrim(value))
        when 'true' then true when '1' then true when '是' then true
        when 'false' then false when '0' then false when '否' then false
    end
$$;

{% endmacro %}

{#- `dbt run-operation install_util_functions`: the same functions outside a run (tests, operators). -#}
{% macro install_util_functions() %}
    {% do run_query(create_util_functions()) %}
    {% do log('util functions installed', info=true) %}
{% endmacro %}
