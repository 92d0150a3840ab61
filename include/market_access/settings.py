"""Operator settings: every knob is an environment variable with a sensible default.

The README's "Configuration" table lists them. Nothing here opens a connection or reads a file,
so importing it is free (DAG parsing imports it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from pathlib import Path

BEIJING = timezone(timedelta(hours=8), name="Asia/Shanghai")


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_int(name: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a whole number") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"environment variable {name}={value} is outside {lo}..{hi}")
    return value


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from None


def project_root() -> Path:
    """The checkout (or, in a container, MARKET_ACCESS_HOME)."""
    home = os.environ.get("MARKET_ACCESS_HOME")
    if home:
        return Path(home).resolve()
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    root: Path = field(default_factory=project_root)

    # --- where things live -------------------------------------------------------------
    @property
    def local_dir(self) -> Path:
        """Git-ignored folder for everything the platform creates at run time."""
        return Path(_env("MARKET_ACCESS_LOCAL_DIR", str(self.root / ".local"))).resolve()

    @property
    def pgdata(self) -> Path:
        return self.local_dir / "pgdata"

    @property
    def airflow_home(self) -> Path:
        """AIRFLOW_HOME of the embedded run (`make run`); a deployed Airflow keeps its own."""
        return self.local_dir / "airflow"

    @property
    def hmac_key_file(self) -> Path:
        """The embedded default's pseudonym key (generated once, mode 0600); a deployment sets
        MARKET_ACCESS_HMAC_KEY / MARKET_ACCESS_HMAC_KEY_ID or the Airflow Variable instead."""
        return self.local_dir / "secrets" / "hmac.key"

    @property
    def simulator_dir(self) -> Path:
        return self.local_dir / "simulators"

    @property
    def log_dir(self) -> Path:
        return self.local_dir / "logs"

    @property
    def submissions_inbox(self) -> Path:
        """Inbox of department submissions: one sub-folder per dept_code (SUBMISSIONS_INBOX overrides)."""
        return Path(_env("SUBMISSIONS_INBOX", str(self.local_dir / "inbox"))).resolve()

    @property
    def departments_csv(self) -> Path:
        """The operator-edited department directory (DEPARTMENTS_CSV overrides)."""
        return Path(_env("DEPARTMENTS_CSV", str(self.root / "config" / "departments.csv"))).resolve()

    # --- sync ------------------------------------------------------------------------------
    @property
    def page_size(self) -> int:
        return _env_int("SYNC_PAGE_SIZE", 500, 1, 500)

    @property
    def lookback(self) -> timedelta:
        """How far before the watermark each sync re-reads, for records a source commits late.

        Re-read records are recognised and not stored twice.
        """
        return timedelta(minutes=_env_int("SYNC_LOOKBACK_MINUTES", 10, 0))

    @property
    def http_timeout(self) -> float:
        return _env_float("SYNC_HTTP_TIMEOUT_SECONDS", 60.0)

    @property
    def max_attempts(self) -> int:
        """Attempts per request on transient errors before the batch fails."""
        return _env_int("SYNC_MAX_ATTEMPTS", 8, 1)

    @property
    def backoff_max(self) -> float:
        return _env_float("SYNC_BACKOFF_MAX_SECONDS", 30.0)

    @property
    def task_retries(self) -> int:
        """Airflow retries of a failed sync task (requests are already retried inside it)."""
        return _env_int("SYNC_TASK_RETRIES", 3, 1)

    @property
    def retry_delay_seconds(self) -> int:
        return _env_int("SYNC_RETRY_DELAY_SECONDS", 120, 1)

    def schedule(self, system: str) -> str:
        """Cron (Beijing time) of a system's sync DAG; SYNC_SCHEDULE_<SYSTEM> overrides it."""
        defaults = {
            "gov_service": "0 2 * * *",
            "market_supervision": "10 2 * * *",
            "credit": "20 2 * * *",
            "random_inspection": "30 2 * * *",
        }
        return _env(f"SYNC_SCHEDULE_{system.upper()}", defaults.get(system, "0 3 * * *"))

    @property
    def start_date(self) -> str:
        return _env("SYNC_START_DATE", "2026-01-01")

    # --- simulators ------------------------------------------------------------------------
    @property
    def sim_seed(self) -> int:
        return _env_int("SIM_SEED", 20260701)

    @property
    def sim_scale(self) -> float:
        return _env_float("SIM_SCALE", 1.0)

    @property
    def sim_advance_days(self) -> int:
        """Days the simulators' clock moves on between two `make run`s (0 = hold still)."""
        return _env_int("SIM_ADVANCE_DAYS", 1, 0)

    @property
    def sim_faults(self) -> str:
        """Fault profile of the simulators started by `make run`: off, network, light or heavy.

        `network` injects every transport fault (429, 5xx, resets, slow and truncated responses,
        code 50001, early token expiry); light and heavy add records written while a client pages.
        """
        return _env("SIM_FAULTS", "network")

    # --- alerts (data-quality alert e-mails, submission receipts) ----------------------------
    @property
    def alert_escalate_after_days(self) -> int:
        """A failure still unfixed this many days after it was first seen is escalated: the
        department's mail is copied (Cc) to the 发改局 (ALERT_ESCALATE_AFTER_DAYS)."""
        return _env_int("ALERT_ESCALATE_AFTER_DAYS", 3, 1)

    @property
    def alert_digest_weekday(self) -> int:
        """ISO weekday (1 = Monday … 7 = Sunday) of the weekly digest: on that (Beijing, data) day a
        department's mail lists every open failure; on other days only new or worsened ones
        (ALERT_DIGEST_WEEKDAY)."""
        return _env_int("ALERT_DIGEST_WEEKDAY", 1, 1, 7)

    @property
    def alert_mail_dir(self) -> Path:
        """Where messages go as .eml files when no `smtp_default` connection is configured
        (ALERT_MAIL_DIR overrides)."""
        return Path(_env("ALERT_MAIL_DIR", str(self.local_dir / "mail" / "outbox"))).resolve()

    @property
    def alert_mail_from(self) -> str:
        """Sender address when the `smtp_default` connection has no `from_email` extra (ALERT_MAIL_FROM)."""
        return _env("ALERT_MAIL_FROM", "market-access@localhost")

    # --- quality (data-quality engine: rule catalogue, Great Expectations, Data Docs) -------------
    @property
    def quality_dir(self) -> Path:
        """Run-time folder of the quality engine (the GX working copy lives in its `gx/`)."""
        return self.local_dir / "quality"

    @property
    def quality_data_docs_dir(self) -> Path:
        """Where the quality runs' Data Docs are built (QUALITY_DATA_DOCS_DIR overrides)."""
        return Path(_env("QUALITY_DATA_DOCS_DIR", str(self.quality_dir / "data_docs"))).resolve()

    @property
    def quality_rules_file(self) -> Path:
        """The data-quality rule catalogue (QUALITY_RULES overrides)."""
        return Path(_env("QUALITY_RULES", str(self.root / "config" / "quality_rules.yml"))).resolve()

    @property
    def quality_gx_config_dir(self) -> Path:
        """The committed Great Expectations project (great_expectations.yml)."""
        return self.root / "expectations"

    @property
    def quality_as_of(self):
        """The data date quality runs judge against (QUALITY_AS_OF, YYYY-MM-DD); unset: the run's
        logical date. `make run` sets it to the simulators' clock, whose data ends there."""
        from datetime import date

        raw = _env("QUALITY_AS_OF", "")
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ValueError(
                f"environment variable QUALITY_AS_OF={raw!r} is not a date (YYYY-MM-DD)"
            ) from None

    @property
    def dbt_threads(self) -> int:
        """Models dbt builds side by side in the warehouse DAGs (DBT_THREADS; as dbt_project/profiles.yml)."""
        return _env_int("DBT_THREADS", 2, 1, 32)

    @property
    def quality_workers(self) -> int:
        """Processes that validate departments side by side (QUALITY_WORKERS; 1 = in the caller)."""
        return _env_int("QUALITY_WORKERS", min(os.cpu_count() or 1, 2), 1, 16)

    @property
    def quality_full_run(self) -> bool:
        """QUALITY_FULL_RUN=1: validate every rule of every department, carry nothing forward."""
        return _env("QUALITY_FULL_RUN", "").strip().lower() in ("1", "true", "yes", "on")


def settings() -> Settings:
    return Settings()
