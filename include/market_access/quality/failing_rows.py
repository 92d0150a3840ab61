"""Every failing record of the row-level rules that failed, read from the batch tables.

Great Expectations decides success and counts the failing rows (its BASIC result). Asking it for
every failing record id as well (COMPLETE with an index column) costs a second validation per
department and asset, about 50 ms of Python each; for the expectation types the catalogue uses,
the failing rows are a plain predicate on the batch table, so they are read with one query per
rule for all departments at once. Each department's count is checked against the count GX
reported; where they differ, or for an expectation type not listed here, GX itself is asked
(Batch.validate with COMPLETE, nothing stored), so a result never carries ids GX would not.
"""

from __future__ import annotations

import logging
from collections import defaultdict

import psycopg
from psycopg import sql

from market_access.quality.batches import DEPT_COLUMN, KEY_COLUMN, SCHEMA, AssetBatch
from market_access.quality.catalogue import Rule

log = logging.getLogger(__name__)


def predicate(rule: Rule, table: sql.Composable) -> tuple[sql.Composable, list] | None:
    """SQL selecting the rows the rule's expectation counts as unexpected, with its parameters;
    None when the expectation type (or an option of it) is not covered here."""
    kw = rule.kwargs
    if kw.get("row_condition") is not None:
        return None
    etype = rule.expectation
    if etype == "expect_column_pair_values_a_to_be_greater_than_b":
        if kw.get("ignore_row_if") != "either_value_is_missing":
            return None
        a, b = sql.Identifier(kw["column_A"]), sql.Identifier(kw["column_B"])
        op = sql.SQL(">=" if kw.get("or_equal") else ">")
        cond = sql.SQL("{a} is not null and {b} is not null and not ({a} {op} {b})")
        return cond.format(a=a, b=b, op=op), []
    if not isinstance(kw.get("column"), str):
        return None
    c = sql.Identifier(kw["column"])
    if etype == "expect_column_values_to_be_null":
        return sql.SQL("{c} is not null").format(c=c), []
    if etype == "expect_column_values_to_not_be_null":
        return sql.SQL("{c} is null").format(c=c), []
    if etype == "expect_column_values_to_be_in_set":
        values = list(kw.get("value_set") or [])
        if not values or len({type(v) for v in values}) != 1:
            return None
        return sql.SQL("{c} is not null and not ({c} = any(%s))").format(c=c), [values]
    if etype == "expect_column_values_to_not_be_in_set":
        values = list(kw.get("value_set") or [])
        if not values or len({type(v) for v in values}) != 1:
            return None
        return sql.SQL("{c} = any(%s)").format(c=c), [values]
    if etype == "expect_column_values_to_be_between":
        lo, hi = kw.get("min_value"), kw.get("max_value")
        if (lo is None and hi is None) or not all(isinstance(v, (int, float)) or v is None for v in (lo, hi)):
            return None
        parts, params = [], []
        if lo is not None:
            parts.append(sql.SQL("{c} <= %s" if kw.get("strict_min") else "{c} < %s").format(c=c))
            params.append(lo)
        if hi is not None:
            parts.append(sql.SQL("{c} >= %s" if kw.get("strict_max") else "{c} > %s").format(c=c))
            params.append(hi)
        return sql.SQL("{c} is not null and ({cond})").format(c=c, cond=sql.SQL(" or ").join(parts)), params
    if etype == "expect_column_values_to_be_unique":
        return (
            sql.SQL(
                "{c} is not null and ({d}, {c}) in "
                "(select {d}, {c} from {t} where {c} is not null group by 1, 2 having count(*) > 1)"
            ).format(c=c, d=sql.Identifier(DEPT_COLUMN), t=table),
            [],
        )
    if etype == "expect_column_values_to_match_regex" and isinstance(kw.get("regex"), str):
        return sql.SQL("{c} is not null and {c} !~ %s").format(c=c), [kw["regex"]]
    return None


def collect(
    conn: psycopg.Connection,
    batches: dict[str, AssetBatch],
    rules: dict[str, Rule],
    outcomes: list,
    fallback,
) -> None:
    """Fill `failed_ids` of every row-level outcome with failing rows. `fallback(outcomes)` asks GX
    for the outcomes this module cannot list or whose count disagrees with GX's."""
    wanted: dict[str, list] = defaultdict(list)
    for o in outcomes:
        rule = rules[o.rule_id]
        if rule.level == "row" and (o.unexpected_count or 0) > 0:
            wanted[o.rule_id].append(o)
    left: list = []
    for rule_id, outs in wanted.items():
        rule = rules[rule_id]
        table = sql.Identifier(SCHEMA, batches[rule.asset].table)
        pred = predicate(rule, table)
        if pred is None:
            left.extend(outs)
            continue
        condition, params = pred
        query = sql.SQL("select {d}, {k} from {t} where {d} = any(%s) and ({cond})").format(
            d=sql.Identifier(DEPT_COLUMN), k=sql.Identifier(KEY_COLUMN), t=table, cond=condition
        )
        ids: dict[str, list[str]] = defaultdict(list)
        for dept, key in conn.execute(query, [[o.dept_code for o in outs], *params]):
            ids[dept].append(key)
        for o in outs:
            found = ids.get(o.dept_code, [])
            if len(set(found)) == o.unexpected_count:
                o.failed_ids = found
            else:
                log.info(
                    "%s %s: the batch table gives %d failing rows, GX %s; asking GX",
                    o.dept_code,
                    o.rule_id,
                    len(set(found)),
                    o.unexpected_count,
                )
                left.append(o)
    if left:
        fallback(left)
