"""Seeded fault injection for the simulators: the failures contract §1.2 tells connectors to survive."""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields, replace

RATE_NAMES = (
    "rate_429",
    "rate_5xx",
    "rate_reset",
    "rate_slow",
    "rate_truncate",
    "rate_busy",
    "rate_token_expiry",
    "rate_concurrent_write",
)
# error kinds in the order they are tried; the first that fires answers the request
ERROR_KINDS = (
    ("reset", "rate_reset"),
    ("429", "rate_429"),
    ("5xx", "rate_5xx"),
    ("token_expiry", "rate_token_expiry"),
    ("busy", "rate_busy"),
    ("truncate", "rate_truncate"),
)
STATUS_5XX = (500, 502, 503, 504)


@dataclass(frozen=True)
class FaultConfig:
    """Per-request probabilities of each fault (0 = never, 1 = always) and their knobs."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_reset: float = 0.0
    rate_slow: float = 0.0
    rate_truncate: float = 0.0
    rate_busy: float = 0.0
    rate_token_expiry: float = 0.0
    rate_concurrent_write: float = 0.0
    retry_after: int = 1  # seconds, sent with 429
    slow_seconds: float = 1.5
    writes_per_fault: int = 3  # records updated by one concurrent-write fault
    seed: int = 0

    def __post_init__(self) -> None:
        for name in RATE_NAMES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if self.retry_after < 0 or self.slow_seconds < 0 or self.writes_per_fault < 0:
            raise ValueError("retry_after, slow_seconds and writes_per_fault must not be negative")

    @classmethod
    def profile(cls, name: str, seed: int = 0) -> FaultConfig:
        """off: a well-behaved server; light: what a day on the government network looks like; heavy: a bad day."""
        try:
            rates = PROFILES[name]
        except KeyError:
            raise ValueError(f"unknown fault profile {name!r}; known: {sorted(PROFILES)}") from None
        return cls(seed=seed, **rates)

    @property
    def active(self) -> bool:
        return any(getattr(self, n) > 0 for n in RATE_NAMES)

    def updated(self, changes: dict) -> FaultConfig:
        """A copy with a profile and/or individual settings applied (as POSTed to /_sim/faults)."""
        changes = dict(changes)
        base = self
        if "profile" in changes:
            base = FaultConfig.profile(str(changes.pop("profile")), seed=int(changes.get("seed", self.seed)))
        known = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"unknown fault settings {unknown}; known: profile, {sorted(known)}")
        cast = {
            k: (int(v) if k in ("retry_after", "writes_per_fault", "seed") else float(v))
            for k, v in changes.items()
        }
        return replace(base, **cast)

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES: dict[str, dict] = {
    "off": {},
    "light": dict(
        rate_429=0.01,
        rate_5xx=0.01,
        rate_reset=0.005,
        rate_slow=0.01,
        rate_truncate=0.005,
        rate_busy=0.01,
        rate_token_expiry=0.005,
        rate_concurrent_write=0.05,
        slow_seconds=1.0,
    ),
    # light's transport faults without concurrent writes: what `make run` uses, because a
    # concurrent write lives only in the running process and a restarted simulator forgets it
    "network": dict(rate_429=0.01, rate_5xx=0.01, rate_reset=0.005, rate_slow=0.01, rate_truncate=0.005,
                    rate_busy=0.01, rate_token_expiry=0.005, slow_seconds=1.0),
    "heavy": dict(
        rate_429=0.05,
        rate_5xx=0.05,
        rate_reset=0.03,
        rate_slow=0.05,
        rate_truncate=0.03,
        rate_busy=0.05,
        rate_token_expiry=0.03,
        rate_concurrent_write=0.3,
        slow_seconds=2.0,
        writes_per_fault=5,
    ),
}


@dataclass(frozen=True)
class Decision:
    """What to do to one request."""

    error: str | None = None  # one of ERROR_KINDS' names
    status: int = 0  # for 5xx
    slow: bool = False
    write: bool = False
    cut: float = 0.5  # share of the body kept when truncating


class FaultInjector:
    """Draws one Decision per data request from a seeded stream (thread-safe)."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(f"faults|{config.seed}")
        self._lock = threading.Lock()
        self.write_rng = random.Random(f"writes|{config.seed}")

    def decide(self) -> Decision:
        c = self.config
        if not c.active:
            return Decision()
        with self._lock:
            # always draw the same numbers in the same order, so a seed replays the same faults
            draws = [self._rng.random() for _ in range(len(ERROR_KINDS) + 2)]
            status = STATUS_5XX[self._rng.randrange(len(STATUS_5XX))]
            cut = self._rng.uniform(0.1, 0.9)
        error = next(
            (kind for (kind, rate), u in zip(ERROR_KINDS, draws, strict=False) if u < getattr(c, rate)), None
        )
        return Decision(
            error=error,
            status=status,
            slow=draws[-2] < c.rate_slow,
            write=draws[-1] < c.rate_concurrent_write,
            cut=cut,
        )
