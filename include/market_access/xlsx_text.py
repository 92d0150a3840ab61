"""Writing workbooks safely: a string from data becomes a string cell, never a formula.

openpyxl takes any string starting with "=" for a formula; Excel would run it (=HYPERLINK(…),
=WEBSERVICE(…)). Every workbook the platform writes appends its rows through `append_row`.
Numbers, dates and booleans keep their types.
"""

from __future__ import annotations


def append_row(ws, values) -> None:
    """`ws.append(values)`, with every cell openpyxl made a formula turned back into the string it was."""
    ws.append(values)
    for cell in ws[ws.max_row]:
        if cell.data_type == "f":
            cell.data_type = "s"
