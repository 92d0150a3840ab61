"""Working-day arithmetic for the simulated county (State Council calendar, weekends beyond it)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import date, datetime, timedelta
from functools import cache

import chinese_calendar

FIRST = date(2000, 1, 1)
LAST = date(2040, 12, 31)


def _workday_rule():
    """is_workday built from chinese-calendar's tables (its per-day API is too slow for 18k days)."""
    holidays, makeups = chinese_calendar.holidays, chinese_calendar.workdays
    known = {d.year for d in holidays}

    def is_workday(d: date) -> bool:
        # years chinese-calendar has not published fall back to plain weekdays
        if d.year in known and (d in holidays or d in makeups):
            return d in makeups
        return d.weekday() < 5

    return is_workday


class Calendar:
    """Precomputed working days so that adding N working days is a list lookup."""

    def __init__(self, first: date = FIRST, last: date = LAST) -> None:
        self.first = first
        n = (last - first).days + 1
        days = [first + timedelta(days=i) for i in range(n)]
        is_workday = _workday_rule()
        self.workdays: list[date] = [d for d in days if is_workday(d)]
        self._ordinals = [d.toordinal() for d in self.workdays]

    def is_workday(self, d: date) -> bool:
        i = bisect_left(self._ordinals, d.toordinal())
        return i < len(self._ordinals) and self._ordinals[i] == d.toordinal()

    def on_or_after(self, d: date) -> date:
        return self.workdays[bisect_left(self._ordinals, d.toordinal())]

    def add(self, d: date, n: int) -> date:
        """The n-th working day after d (n = 0: d itself, or the next working day if d is off)."""
        i = bisect_left(self._ordinals, d.toordinal())
        if n > 0 and i < len(self._ordinals) and self._ordinals[i] == d.toordinal():
            return self.workdays[i + n]
        return self.workdays[i + max(n - 1, 0)] if n > 0 else self.workdays[i]

    def between(self, start: date, end: date) -> list[date]:
        """Working days in [start, end]."""
        lo = bisect_left(self._ordinals, start.toordinal())
        hi = bisect_right(self._ordinals, end.toordinal())
        return self.workdays[lo:hi]

    def count(self, start: date, end: date) -> int:
        """Working days after start up to and including end (0 when end <= start)."""
        lo = bisect_right(self._ordinals, start.toordinal())
        hi = bisect_right(self._ordinals, end.toordinal())
        return max(hi - lo, 0)


@cache
def calendar() -> Calendar:
    return Calendar()


def office_time(day: date, rng) -> datetime:
    """A moment in office hours (09:00–12:00, 13:30–17:30) on day."""
    m = rng.randrange(420)
    minute = 540 + m if m < 180 else 810 + (m - 180)
    return datetime(day.year, day.month, day.day, minute // 60, minute % 60, rng.randrange(60))


def some_time(day: date, rng, first_hour: int = 0, last_hour: int = 24) -> datetime:
    """A moment between first_hour and last_hour on day."""
    s = rng.randrange(first_hour * 3600, last_hour * 3600)
    return datetime(day.year, day.month, day.day, s // 3600, s // 60 % 60, s % 60)
