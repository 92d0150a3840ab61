"""The SQL snippets of the rule catalogue are Jinja templates; these are the helpers they may use.

In a template, `t` is the asset's record (plus anything its `joins` bring in) and:

- `{{ as_of }}`: the run's data date as a SQL date literal (Beijing date the run is "as of");
- `{{ beijing_date('t.reported_at') }}`: a timestamptz as its Beijing date;
- `{{ workday_seq('t.decided_on') }}`: working days up to and including that date
  (intermediate.int_calendar__days, the State Council calendar with make-up days);
- `{{ working_days('t.decided_on', 't.published_on') }}`: working days after the first date up to and
  including the second (seq(b) − seq(a));
- `{{ missing({'字段名': 't.column', …}) }}`: the Chinese names of the empty fields, or null when
  none is (pair it with expect_column_values_to_be_null);
- `{{ unmapped({'渠道': ['t.channel_label', 't.is_channel_mapped'], …}) }}`: `渠道: <value>` for every
  source label that staging could not map, or null. The second element is either staging's
  `is_<col>_mapped` flag of an open code list (the label is kept and the code is `other`, seed
  `code_lists`) or a code column that is null when the label could not be resolved (e.g. a
  department written by name: `['t.dept_ref_raw', 't.dept_code']`);
- `{{ out_of_range({'申请时间': beijing_date('t.submitted_at'), …}) }}`: the fields whose date lies
  before 2000-01-01 or after the data date, or null (give timestamps through beijing_date);
- `{{ yesterday }}`: the day before the data date, the last day whose data is complete;
- `{{ lag_workdays('t.decided_on', beijing_date('t.reported_at'), 7) }}`: for a deadline of 7
  working days from an event to its completion: the working days it took when completed by
  yesterday; when not completed and the deadline has passed, the least it can still take (so it
  exceeds the limit); null when not completed and not yet due (not a failure as of the run date);
- `{{ lag_days(…) }}`: the same in calendar days.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import cache

CALENDAR = "intermediate.int_calendar__days"
EARLIEST = "date '2000-01-01'"


def sql_date(d: date) -> str:
    return f"date '{d.isoformat()}'"


def workday_seq(expr: str) -> str:
    return f"(select cal.workday_seq from {CALENDAR} as cal where cal.calendar_date = ({expr})::date)"


def working_days(start: str, end: str) -> str:
    return f"({workday_seq(end)} - {workday_seq(start)})"


def beijing_date(expr: str) -> str:
    return f"(({expr}) at time zone 'Asia/Shanghai')::date"


def _quote(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def missing(fields: dict[str, str]) -> str:
    parts = [f"case when ({expr}) is null then {_quote(label)} end" for label, expr in fields.items()]
    return f"nullif(concat_ws('、', {', '.join(parts)}), '')"


def _is_mapped_flag(expr: str) -> bool:
    return re.fullmatch(r"(?:\w+\.)?is_\w+_mapped", expr.strip()) is not None


def unmapped(fields: dict[str, list[str]]) -> str:
    parts = [
        f"case when ({label_expr}) is not null and "
        + (f"not coalesce({code_expr}, false)" if _is_mapped_flag(code_expr) else f"({code_expr}) is null")
        + f" then {_quote(label + ': ')} || ({label_expr}) end"
        for label, (label_expr, code_expr) in fields.items()
    ]
    return f"nullif(concat_ws('；', {', '.join(parts)}), '')"


def _dated_helpers(as_of: date) -> dict:
    """Helpers that need the run's data date (bound per render)."""
    as_of_sql = sql_date(as_of)
    yesterday = sql_date(as_of - timedelta(days=1))

    def out_of_range(fields: dict[str, str], earliest: str = EARLIEST, latest: str | None = None) -> str:
        hi = latest or as_of_sql
        parts = [
            f"case when ({expr})::date < {earliest} or ({expr})::date > {hi} then {_quote(label)} end"
            for label, expr in fields.items()
        ]
        return f"nullif(concat_ws('、', {', '.join(parts)}), '')"

    def lag_workdays(event: str, done: str, limit: int) -> str:
        return _lag(event, done, limit, working_days)

    def lag_days(event: str, done: str, limit: int) -> str:
        return _lag(event, done, limit, lambda a, b: f"(({b})::date - ({a})::date)")

    def _lag(event: str, done: str, limit: int, between) -> str:
        # done by yesterday: its lag; not done and the deadline passed: the least lag it can still
        # have (done today); not done and not yet due, or no event date: not judged (null)
        return (
            f"(case when ({event}) is null or ({event})::date > {yesterday} then null "
            f"when ({done}) is not null and ({done})::date <= {yesterday} then {between(event, done)} "
            f"when {between(event, yesterday)} >= {int(limit)} then {between(event, yesterday)} + 1 end)"
        )

    return {
        "as_of": as_of_sql,
        "yesterday": yesterday,
        "out_of_range": out_of_range,
        "lag_workdays": lag_workdays,
        "lag_days": lag_days,
    }


@cache
def environment():
    """The Jinja environment (StrictUndefined: a misspelt helper fails loudly)."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.globals.update(
        workday_seq=workday_seq,
        working_days=working_days,
        beijing_date=beijing_date,
        missing=missing,
        unmapped=unmapped,
    )
    return env


def render(text: str, as_of: date) -> str:
    """A catalogue SQL snippet with the run's data date filled in."""
    return environment().from_string(text).render(**_dated_helpers(as_of)).strip()
