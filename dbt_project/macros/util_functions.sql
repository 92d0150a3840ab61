{#
    SQL helpers for normalising codes, check digits, masks and scrubbing (schema util, owned by
    transformer). Called from on-run-start; every statement is idempotent.
    Rules: domain.md §3 (codes, check digits) and §4 (de-identification).
#}
{#-
    A regular expression (no anchors) matching exactly the valid Gregorian dates YYYY<sep>MM<sep>DD,
    years 0001–9999: days per month, 29 February only in leap years (÷4, not ÷100 unless ÷400).
    One regex match is the whole validity check: as fast as the format check alone, no exception
    handler, and no PostgreSQL 16 pg_input_is_valid (README "Supported PostgreSQL versions").
-#}
{% macro valid_date_regex(sep='-') -%}
    {%- set year = '(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)' -%}
    {%- set leap_year = '(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)' -%}
    (?:{{ year }}{{ sep }}(?:(?:0[1-9]|1[0-2]){{ sep }}(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2]){{ sep }}(?:29|30)|(?:0[13578]|1[02]){{ sep }}31)|{{ leap_year }}{{ sep }}02{{ sep }}29)
{%- endmacro %}

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

{#- The one-expression SQL helpers below are not declared strict, though null in gives null out: PostgreSQL
    inlines a SQL function into the query only if it is not strict or its body is provably strict, and a
    CASE or NULLIF body is not. Inlined, a call costs its expression (clean_text over 600k values: 0.64 s
    against 2.15 s called). Each one's body returns null for a null argument by itself. -#}
{# the common case (already clean) costs one regex match; the rest is normalised #}
create or replace function util.clean_code(value text) returns text
language sql immutable parallel safe
as $$
    select case
        when value ~ '^[0-9A-Z]+$' then value
        else nullif(upper(regexp_replace(util.to_halfwidth(value), '\s+', '', 'g')), '')
    end
$$;

{# the common case (nothing to translate or remove) costs one regex match #}
create or replace function util.clean_name(value text) returns text
language sql immutable parallel safe
as $$
    select case
        when value !~ '[\s\uff01-\uff5e\u3000]' then nullif(value, '')
        else nullif(regexp_replace(util.to_halfwidth(value), '\s+', '', 'g'), '')
    end
$$;

create or replace function util.clean_text(value text) returns text
language sql immutable parallel safe
as $$
    select nullif(btrim(value, E' \t\r\n\u3000'), '')
$$;

{# GB 32100-2015: weights 3^i mod 31, check = (31 − Σ mod 31) mod 31 #}
create or replace function util.uscc_is_valid(value text) returns boolean
language plpgsql immutable strict parallel safe
as $$
{# plpgsql: called for every code of every row, so no CTE-bodied SQL (those are never inlined) #}
{# the weighted sum is one unrolled expression: a plpgsql loop costs a statement per digit #}
declare
    alphabet constant text := '0123456789ABCDEFGHJKLMNPQRTUWXY';
    code text := util.clean_code(value);
    total int;
begin
    if code is null or code !~ '^[0-9]{8}[0-9A-HJ-NPQRTUWXY]{10}$' then
        return false;
    end if;
    total := {% for w in [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28] -%}
        {{ ' + ' if not loop.first }}(strpos(alphabet, substr(code, {{ loop.index }}, 1)) - 1) * {{ w }}
    {%- endfor %};
    return substr(alphabet, (31 - total % 31) % 31 + 1, 1) = substr(code, 18, 1);
end
$$;

create or replace function util.is_valid_ymd(y int, m int, d int) returns boolean
language sql immutable strict parallel safe
as $$
    select y between 1 and 9999 and m between 1 and 12 and d >= 1
        and d <= extract(day from (make_date(y, m, 1) + interval '1 month - 1 day'))::int
$$;

{# GB 11643-1999 check character over the first 17 digits: weights 2^(17−i) mod 11 #}
create or replace function util.ric_check_char(first17 text) returns text
language plpgsql immutable strict parallel safe
as $$
declare
    total int;
begin
    if first17 !~ '^[0-9]{17}$' then
        return null;
    end if;
    total := {% for w in [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2] -%}
        {{ ' + ' if not loop.first }}(ascii(substr(first17, {{ loop.index }}, 1)) - 48) * {{ w }}
    {%- endfor %};
    return substr('10X98765432', total % 11 + 1, 1);
end
$$;

{# half-width, upper X, 15-digit legacy numbers → 18 digits (insert 19, compute the check) #}
create or replace function util.ric_to_18(value text) returns text
language plpgsql immutable strict parallel safe
as $$
declare
    code text := util.clean_code(value);
    first17 text;
begin
    if code ~ '^[0-9]{15}$' then
        first17 := substr(code, 1, 6) || '19' || substr(code, 7, 9);
        return first17 || util.ric_check_char(first17);
    end if;
    return code;
end
$$;

create or replace function util.ric_is_valid(value text) returns boolean
language plpgsql immutable strict parallel safe
as $$
declare
    code text := util.ric_to_18(value);
begin
    return coalesce(
        {# six digits of place, a valid YYYYMMDD birth date, three of sequence, the check character #}
        code ~ '^[0-9]{6}{{ valid_date_regex('') }}[0-9]{3}[0-9X]$'
        and substr(code, 7, 4)::int >= 1800
        and util.ric_check_char(substr(code, 1, 17)) = substr(code, 18, 1),
        false);
end
$$;

{# birth year of a valid 身份证号 (generalised quasi-identifier) #}
create or replace function util.ric_birth_year(value text) returns int
language sql immutable parallel safe
as $$
    select case when util.ric_is_valid(value) then substr(util.ric_to_18(value), 7, 4)::int end
$$;

create or replace function util.phone_normalize(value text) returns text
language plpgsql immutable strict parallel safe
as $$
declare
    digits text := regexp_replace(util.to_halfwidth(value), '[^0-9]', '', 'g');
begin
    if digits ~ '^0086[0-9]{11}$' then
        return substr(digits, 5);
    elsif digits ~ '^86[0-9]{11}$' then
        return substr(digits, 3);
    end if;
    return nullif(digits, '');
end
$$;

create or replace function util.mobile_is_valid(value text) returns boolean
language sql immutable strict parallel safe
as $$
    select coalesce(util.phone_normalize(value) ~ '^1[3-9][0-9]{9}$', false)
$$;

{# 2026-03-05, 2026/03/05, 2026/3/5, 20260305 (a time part is ignored); null when it cannot #}
create or replace function util.parse_date(value text) returns date
language plpgsql immutable strict parallel safe
as $$
declare
    v text;
    ymd text[];
begin
    {# the contract's own format first: one regex is the format and the validity check #}
    if value ~ '^{{ valid_date_regex('-') }}$' then
        return value::date;
    end if;
    v := btrim(util.to_halfwidth(value));
    if v ~ '^[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}([ T][0-9:.]+)?$' then
        ymd := regexp_split_to_array(split_part(replace(v, 'T', ' '), ' ', 1), '[-/.]');
    elsif v ~ '^[0-9]{8}$' then
        ymd := array[substr(v, 1, 4), substr(v, 5, 2), substr(v, 7, 2)];
    else
        return null;
    end if;
    if util.is_valid_ymd(ymd[1]::int, ymd[2]::int, ymd[3]::int) then
        return make_date(ymd[1]::int, ymd[2]::int, ymd[3]::int);
    end if;
    return null;
end
$$;

{# a source timestamp 'YYYY-MM-DD HH:MM:SS' in Beijing time (any accepted date form, time optional) #}
create or replace function util.parse_beijing_timestamp(value text) returns timestamptz
language plpgsql immutable strict parallel safe
as $$
declare
    v text;
    d date;
    hms text;
begin
    {# the contract's own format, valid: one regex (hours 00–23, no 24:00:00 or leap second) #}
    if value ~ '^{{ valid_date_regex('-') }} (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$' then
        return value::timestamp at time zone 'Asia/Shanghai';
    end if;
    v := btrim(util.to_halfwidth(value));
    d := util.parse_date(v);
    hms := substring(v from '[ T](.*)$');
    if d is null or (hms is not null and hms !~ '^([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$') then
        return null;
    end if;
    return (d + coalesce(hms, '00:00:00')::time) at time zone 'Asia/Shanghai';
end
$$;

{# first 3 and last 4 characters kept (domain.md §4), all hidden when shorter than 8 #}
create or replace function util.mask_middle(c text) returns text
language sql immutable parallel safe
as $$
    select case when length(c) > 7 then left(c, 3) || repeat('*', length(c) - 7) || right(c, 4)
        else repeat('*', length(c)) end
$$;

create or replace function util.mask_ric(value text) returns text
language sql immutable parallel safe
as $$
    select util.mask_middle(util.ric_to_18(value))
$$;

create or replace function util.mask_phone(value text) returns text
language sql immutable parallel safe
as $$
    select util.mask_middle(util.phone_normalize(value))
$$;

{# keep the surname (two characters for the common compound surnames) #}
create or replace function util.mask_name(value text) returns text
language plpgsql immutable strict parallel safe
as $$
declare
    n text := util.clean_name(value);
begin
    if n is null then
        return null;
    elsif length(n) = 1 then
        return '*';
    elsif length(n) >= 3 and left(n, 2) = any (array[
            '欧阳', '司马', '诸葛', '上官', '东方', '皇甫', '尉迟', '公孙', '慕容', '长孙',
            '宇文', '司徒', '夏侯', '轩辕', '令狐', '端木', '南宫', '独孤', '西门', '申屠']) then
        return left(n, 2) || repeat('*', length(n) - 2);
    end if;
    return left(n, 1) || repeat('*', length(n) - 1);
end
$$;

{#
    Free text (domain.md §4): e-mail addresses → [邮箱]; ID numbers (18 or 15 digits, spaces,
    dashes or full-width digits inside) → [身份证号]; mobiles in every grouping (+86 / 0086 / (+86),
    spaces, dashes) → [手机号]; landlines (0531-88065289, (0531)88065289, a bare 7–8 digit number
    after 电话/座机/回电 …) → [电话]; `names` (the record's own and the dictionary's hits, see
    scrub_free_text) → [姓名], longest first; then a name nobody knows right after a title
    (我是 / 我叫 / 本人 / 姓名 / 联系人 / 经办人 / 投诉人 …): a 百家姓 surname (compound ones
    first) and one or two characters, followed by punctuation, a space, the end or a word such as
    电话 / 反映 / 态度 → [姓名].
#}
{%- set title_re = '(我是|我叫|本人|姓名|名字|联系人|经办人|办理人|投诉人|举报人|反映人|申请人|当事人|代理人|工作人员|窗口人员|办事员|负责人|法定代表人|法人代表|经营者|业主|检查人员|执法人员|签收人|受理人)' %}
{%- set surname_re = '(' ~ (cn_compound_surnames() | join('|')) ~ '|[' ~ (cn_single_surnames() | join('')) ~ '])' %}
{%- set follow_re = '(?=[的，,。；;、：:（()）！!？?\s\[0-9]|$|电话|手机|联系|身份|邮箱|反映|投诉|举报|称|说|表示|态度|同志|先生|女士|老师|师傅|经理|主任|科长|办理|来电|要求|请|对|在|于|已|想|现|因|家|等)' %}
create or replace function util.scrub_text(value text, names text[]) returns text
language plpgsql immutable parallel safe
as $fn$
declare
    s text := value;
    n text;
    m text[];
    known text[] := array[]::text[];
    i int;
begin
    if s is null then
        return null;
    end if;
    {# full-width digits/letters in numbers would slip past the patterns #}
    s := translate(s, '０１２３４５６７８９Ｘｘ＋－＠', '0123456789Xx+-@');
    if strpos(s, '@') > 0 then
        s := regexp_replace(s, '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+', '[邮箱]', 'g');
    end if;
    if s ~ '[0-9]' then
        {# a mobile written with its country code first: 0086 and the number are 15 digits, like an old ID #}
        s := regexp_replace(
            s, '(?<![0-9])[(（]?(\+|00)86[)）]?[ \u3000-]*1[3-9][0-9]([ \u3000-]?[0-9]){8}(?![0-9])',
            '[手机号]', 'g');
        s := regexp_replace(
            s, '(?<![0-9])[0-9]([ \u3000]?[0-9]){16}[ \u3000]?[0-9Xx](?![0-9A-Za-z])', '[身份证号]', 'g');
        s := regexp_replace(s, '(?<![0-9])[0-9]([ \u3000]?[0-9]){14}(?![0-9A-Za-z])', '[身份证号]', 'g');
        s := regexp_replace(
            s, '(?<![0-9])([(（]?(\+|00)?86[)）]?[ \u3000-]*)?1[3-9][0-9]([ \u3000-]?[0-9]){8}(?![0-9])',
            '[手机号]', 'g');
        s := regexp_replace(
            s, '(?<![0-9])[(（]?0[1-9][0-9]{1,2}[)）]?[ \u3000-]?[2-9][0-9]{6,7}(?![0-9])', '[电话]', 'g');
        s := regexp_replace(
            s, '(电话|座机|固话|热线|致电|拨打|回电|联系方式)([:：是为]?[ \u3000]*)[2-9][0-9]{6,7}(?![0-9])',
            '\1\2[电话]', 'g');
    end if;
    {# the names, cleaned, longest first (then by name): sorted here, without a query per call #}
    if names is not null then
        foreach n in array names loop
            n := util.clean_name(n);
            continue when n is null or length(n) < 2 or n = any (known);
            i := 1;
            while i <= coalesce(array_length(known, 1), 0)
                and (length(known[i]) > length(n) or (length(known[i]) = length(n) and known[i] < n)) loop
                i := i + 1;
            end loop;
            known := known[:i - 1] || n || known[i:];
        end loop;
        foreach n in array known loop
            s := replace(s, n, '[姓名]');
        end loop;
    end if;
    if s ~ '{{ title_re }}' then
        for m in
            select regexp_matches(
                s,
                '{{ title_re }}[:：是为]?[ \u3000]*({{ surname_re }}[\u4e00-\u9fa5]{1,2}){{ follow_re }}',
                'g')
        loop
            {# an adverb or verb right after the title is not a name #}
            continue when left(m[2], 1) = any (array['很', '的', '都', '也', '非', '对', '未', '已', '在', '不', '是', '为', '将', '把', '被', '让', '给', '和', '与', '及', '态', '热', '服', '办', '工', '说', '来', '一', '有', '要', '想', '去', '这', '那', '本', '个']);
            s := replace(s, m[2], '[姓名]');
        end loop;
    end if;
    return s;
end
$fn$;

create or replace function util.to_int(value text) returns int
language sql immutable parallel safe
as $$
    select case when btrim(value) ~ '^-?[0-9]{1,9}(\.0+)?$' then split_part(btrim(value), '.', 1)::int end
$$;

create or replace function util.to_numeric(value text) returns numeric
language sql immutable parallel safe
as $$
    select case when btrim(value) ~ '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$' then btrim(value)::numeric end
$$;

create or replace function util.to_bool(value text) returns boolean
language sql immutable parallel safe
as $$
    select case lower(btrim(value))
        when 'true' then true when '1' then true when '是' then true
        when 'false' then false when '0' then false when '否' then false
    end
$$;

{#
    层次分析法: the principal eigenvector of a positive reciprocal n×n judgement matrix by power
    iteration (normalised to sum 1), followed by λmax = mean over i of (A·w)_i / w_i.
    Returns w_1..w_n, λmax. A 1×1 matrix gives {1, 1}.
#}
create or replace function util.ahp_eigen(m float8[]) returns float8[]
language plpgsql immutable strict parallel safe
as $$
declare
    n int := coalesce(array_length(m, 1), 0);
    w float8[];
    v float8[];
    total float8;
    delta float8;
    lambda float8 := 0;
begin
    if n = 0 or array_length(m, 2) is distinct from n then
        return null;
    end if;
    w := array_fill(1.0 / n, array[n]);
    for iteration in 1..1000 loop
        v := array_fill(0.0::float8, array[n]);
        for i in 1..n loop
            for j in 1..n loop
                v[i] := v[i] + m[i][j] * w[j];
            end loop;
        end loop;
        total := 0;
        for i in 1..n loop
            total := total + v[i];
        end loop;
        delta := 0;
        for i in 1..n loop
            delta := greatest(delta, abs(v[i] / total - w[i]));
            w[i] := v[i] / total;
        end loop;
        exit when delta < 1e-12;
    end loop;
    for i in 1..n loop
        total := 0;
        for j in 1..n loop
            total := total + m[i][j] * w[j];
        end loop;
        lambda := lambda + total / w[i] / n;
    end loop;
    return w || lambda;
end
$$;

{% endmacro %}

{#- `dbt run-operation install_util_functions`: the same functions outside a run (tests, operators). -#}
{% macro install_util_functions() %}
    {% do run_query(create_util_functions()) %}
    {% do log('util functions installed', info=true) %}
{% endmacro %}
