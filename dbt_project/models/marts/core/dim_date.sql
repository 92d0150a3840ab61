with

days as (
    select * from {{ ref('int_calendar__days') }}
),

described as (
    select
        calendar_date as date_day,
        is_workday,
        is_weekend,
        is_statutory_holiday,
        is_makeup_workday,
        holiday_name_zh,
        rule_source,
        extract(year from calendar_date)::int as year_number,
        extract(quarter from calendar_date)::int as quarter_number,
        extract(month from calendar_date)::int as month_number,
        to_char(calendar_date, 'YYYY-MM') as month_label,
        to_char(calendar_date, 'YYYY-"Q"Q') as quarter_label,
        to_char(calendar_date, 'YYYY') || case when extract(month from calendar_date) <= 6 then '-H1' else '-H2' end
            as half_year_label,
        (count(*) filter (where is_workday) over (order by calendar_date))::int as workday_seq
    from days
)

select * from described
