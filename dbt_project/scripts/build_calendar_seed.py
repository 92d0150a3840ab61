"""Writes seeds/calendar_days.csv: every day 2024-01-01..2027-12-31 with the State Council working-day rule.

Source: the `chinese-calendar` package (holidays and 调休 make-up working days). Years the package
does not know yet fall back to plain weekdays and are marked `weekday_rule`; correct them in
seeds/calendar_overrides.csv once the State Council publishes the year's arrangement.

Run: .venv/bin/python dbt_project/scripts/build_calendar_seed.py
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar

FIRST = date(2024, 1, 1)
LAST = date(2027, 12, 31)
OUT = Path(__file__).resolve().parent.parent / "seeds" / "calendar_days.csv"

# chinese-calendar's English holiday names → the State Council's names
HOLIDAY_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利纪念日",
}


def rows(first: date = FIRST, last: date = LAST):
    known = {d.year for d in chinese_calendar.holidays}
    d = first
    while d <= last:
        is_weekend = d.weekday() >= 5
        if d.year in known:
            is_holiday = d in chinese_calendar.holidays
            is_makeup = d in chinese_calendar.workdays
            # the package's tables list only the exceptions; weekdays/weekends follow the week
            is_workday = is_makeup or (not is_holiday and not is_weekend)
            name = chinese_calendar.holidays.get(d) or chinese_calendar.workdays.get(d)
            source = "chinese_calendar"
        else:
            is_holiday = is_makeup = False
            is_workday = not is_weekend
            name = None
            source = "weekday_rule"
        yield {
            "calendar_date": d.isoformat(),
            "is_workday": str(is_workday).lower(),
            "is_weekend": str(is_weekend).lower(),
            "is_statutory_holiday": str(is_holiday).lower(),
            "is_makeup_workday": str(is_makeup).lower(),
            "holiday_name_zh": HOLIDAY_ZH.get(name, name or ""),
            "rule_source": source,
        }
        d += timedelta(days=1)


def main() -> None:
    data = list(rows())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(data[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(data)
    print(f"{OUT}: {len(data)} days")


if __name__ == "__main__":
    main()
