"""Find planted secrets in everything a run wrote: files (any encoding of the secret a log or a
config could carry) and the Airflow metadata tables a run fills (XCom, rendered template fields).

Used by tests/e2e/test_new_bureau.py; by hand: `python tests/secret_scan.py <folder>… -- <secret>…`.
"""

from __future__ import annotations

import base64
import sqlite3
import sys
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus

# files above this size are read in chunks (the metadata DB, Postgres logs); overlap keeps a match
# that straddles two chunks
_CHUNK = 8 << 20


def forms(secret: str) -> dict[str, bytes]:
    """The byte strings a secret can appear as in a file: as typed, percent-encoded (a URI),
    JSON-escaped non-ASCII, base64 (e.g. HTTP Basic / SMTP AUTH of the bare secret)."""
    out = {
        "plain": secret.encode(),
        "percent-encoded": quote(secret, safe="").encode(),
        "form-encoded": quote_plus(secret, safe="").encode(),
        "base64": base64.b64encode(secret.encode()).rstrip(b"="),
    }
    return {k: v for k, v in out.items() if len(v) >= 8}


def scan_files(roots: Iterable[Path], secrets: dict[str, str]) -> list[str]:
    """'<path>: <secret name> (<form>)' for every file under the roots that holds a secret."""
    needles = [(name, form, b) for name, s in secrets.items() for form, b in forms(s).items()]
    longest = max(len(b) for _, _, b in needles)
    hits: list[str] = []
    seen: set[Path] = set()
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        files = (
            [root] if root.is_file() else (p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        )
        for path in files:
            if path in seen:
                continue
            seen.add(path)
            found: set[tuple[str, str]] = set()
            try:
                with path.open("rb") as fh:
                    tail = b""
                    while chunk := fh.read(_CHUNK):
                        data = tail + chunk
                        for name, form, b in needles:
                            if b in data:
                                found.add((name, form))
                        tail = data[-longest:]
            except OSError as exc:  # a socket or a file removed while scanning: say so, do not hide it
                hits.append(f"{path}: unreadable ({exc})")
                continue
            hits += [f"{path}: {name} ({form})" for name, form in sorted(found)]
    return hits


def scan_airflow_db(db: Path, secrets: dict[str, str]) -> list[str]:
    """Rows of the Airflow metadata tables a run writes values into (xcom, rendered_task_instance_fields,
    task logs kept in the DB, variables, connections) that hold a secret."""
    hits: list[str] = []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            cols = [r[1] for r in con.execute(f'pragma table_info("{table}")')]
            for row in con.execute(f'select * from "{table}"'):
                text = " ".join(
                    v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                    for v in row
                    if v is not None
                )
                for name, s in secrets.items():
                    for form, b in forms(s).items():
                        if b.decode() in text:
                            hits.append(f"airflow db {table} ({', '.join(cols[:3])}…): {name} ({form})")
    finally:
        con.close()
    return sorted(set(hits))


if __name__ == "__main__":
    args = sys.argv[1:]
    split = args.index("--")
    roots, planted = (
        [Path(a) for a in args[:split]],
        {f"secret{i}": s for i, s in enumerate(args[split + 1 :])},
    )
    found = scan_files(roots, planted)
    for db in (p for r in roots if r.is_dir() for p in r.rglob("airflow.db")):
        found += scan_airflow_db(db, planted)
    print("\n".join(found) or "no secret found")
    sys.exit(1 if found else 0)
