"""Issue #13: `make run` skips `airflow db migrate` only when it has nothing to do (platform.py)."""

from __future__ import annotations

import json
import sqlite3
from importlib.metadata import version

from market_access import platform


def metadata_db(home, revision: str | None = "5f2621c13b39"):
    home.mkdir(parents=True, exist_ok=True)
    db = home / "airflow.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table alembic_version (version_num varchar(32) not null primary key)")
        if revision:
            conn.execute("insert into alembic_version values (?)", (revision,))
    return db


def set_revision(db, revision: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("update alembic_version set version_num = ?", (revision,))


def test_the_default_sqlite_file_is_recognised_and_any_other_database_is_not(tmp_path):
    home = tmp_path / "airflow"
    env = {"AIRFLOW_HOME": str(home)}
    assert platform.sqlite_metadata(env) == home / "airflow.db"
    for name in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD"):
        assert platform.sqlite_metadata({**env, name: "postgresql://airflow@db/airflow"}) is None
    home.mkdir()
    cfg = home / "airflow.cfg"
    cfg.write_text(f"[database]\nsql_alchemy_conn = sqlite:///{home / 'airflow.db'}\n", encoding="utf-8")
    assert platform.sqlite_metadata(env) == home / "airflow.db"
    cfg.write_text("[database]\nsql_alchemy_conn = postgresql://airflow@db/airflow\n", encoding="utf-8")
    assert platform.sqlite_metadata(env) is None


def test_migrate_is_skipped_only_at_the_revision_this_airflow_left(tmp_path):
    home = tmp_path / "airflow"
    env = {"AIRFLOW_HOME": str(home)}
    assert not platform.metadata_is_migrated(env)  # no database yet
    db = metadata_db(home)
    assert not platform.metadata_is_migrated(env)  # never migrated by make run: no stamp

    platform.record_migrated(env)
    stamp = json.loads((home / platform.MIGRATED_STAMP).read_text(encoding="utf-8"))
    assert stamp == {"airflow": version("apache-airflow"), "revision": "5f2621c13b39"}
    assert platform.metadata_is_migrated(env)

    set_revision(db, "0000aaaa1111")  # the database moved (restored from elsewhere, downgraded)
    assert not platform.metadata_is_migrated(env)
    set_revision(db, "5f2621c13b39")
    assert platform.metadata_is_migrated(env)

    # another Airflow version installed since: its migrations may have more to do
    (home / platform.MIGRATED_STAMP).write_text(
        json.dumps({"airflow": "3.2.0", "revision": "5f2621c13b39"}), encoding="utf-8"
    )
    assert not platform.metadata_is_migrated(env)

    (home / platform.MIGRATED_STAMP).write_text("not json", encoding="utf-8")
    assert not platform.metadata_is_migrated(env)

    db.unlink()  # the database deleted: migrate creates it again
    assert not platform.metadata_is_migrated(env)
    platform.record_migrated(env)  # nothing to record: the stale stamp goes
    assert not (home / platform.MIGRATED_STAMP).exists()


def test_a_database_without_a_revision_is_not_migrated(tmp_path):
    home = tmp_path / "airflow"
    env = {"AIRFLOW_HOME": str(home)}
    metadata_db(home, revision=None)
    platform.record_migrated(env)
    assert not platform.metadata_is_migrated(env)
    (home / "airflow.db").write_bytes(b"not a database")
    assert platform.metadata_revision(home / "airflow.db") is None
