"""Values from data are shown as text in Data Docs.

Great Expectations 1.x renders an expectation's unexpected values (and other observed values)
into its Data Docs tables without escaping them: its page templates are named `*.j2`, outside its
own `select_autoescape(["html", "xml"])`, so a department's `<img src=x onerror=alert(1)>` would
become markup (tests/integration/test_data_docs_markup.py shows it). The stored results are
HTML-escaped before the pages are built; the in-memory results the quality run reads are not
touched.
"""

from __future__ import annotations

import html


def _escaped(value):
    if isinstance(value, str):
        return html.escape(value, quote=True)
    if isinstance(value, list | tuple):
        return [_escaped(v) for v in value]
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    return value


def escape_stored_results(context, keys) -> None:
    """HTML-escape every string in the `result` of each stored validation result under `keys`."""
    store = context.validation_results_store
    for key in keys:
        res = store.get(key)
        for er in res.results:
            if er.result:
                er.result = _escaped(er.result)
        store.set(key, res)
