"""The simulated county: one seeded, coherent world behind all four source systems."""

from __future__ import annotations

import hashlib
import heapq
import pickle
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

from market_access.simulators import corrections, credit, gov_service, inspection, market
from market_access.simulators.dirty import SHOWCASE, Dirt
from market_access.simulators.reference import departments
from market_access.simulators.registry import Registry
from market_access.simulators.store import ResourceStore, encode
from market_access.simulators.workdays import calendar
from market_access.sources import catalog

GENERATOR_VERSION = 1
BASE_START = date(2025, 7, 1)
BASE_END = date(2026, 6, 30)
BASE_CLOCK = datetime(2026, 7, 1)
ONE_SECOND = timedelta(seconds=1)

Progress = Callable[[str, int, int], None]

# records per year at scale 1.0 of what arrives day by day (on working days)
ANNUAL = {
    "service-items": 40,
    "inspection-items": 5,
    "inspectors": 15,
    "entities": 4_800,
    "abnormal-operations": 2_000,
    "admin-licenses": 20_000,
    "admin-penalties": 5_000,
    "tasks": 400,
    "cases": 300_000,
}
DAILY = {
    "service-items": gov_service.new_service_items,
    "inspection-items": inspection.new_inspection_items,
    "inspectors": inspection.new_inspectors,
    "entities": market.new_entities,
    "abnormal-operations": market.new_abnormal,
    "admin-licenses": credit.new_licenses,
    "admin-penalties": credit.new_penalties,
    "tasks": inspection.new_tasks,
    "cases": gov_service.new_cases,
}
# expected share of a resource's records corrected (更正) / deleted (撤销) per simulated day
CORRECT_RATE = {
    "service-items": 5e-4,
    "cases": 1e-4,
    "evaluations": 5e-5,
    "entities": 2e-4,
    "abnormal-operations": 2e-4,
    "admin-licenses": 1e-4,
    "admin-penalties": 3e-4,
    "credit-repairs": 5e-4,
    "risk-ratings": 1e-4,
    "inspection-items": 3e-4,
    "object-pool": 5e-5,
    "inspectors": 5e-4,
    "plans": 3e-4,
    "tasks": 5e-4,
    "results": 1e-4,
}
DELETE_RATE = {
    "admin-penalties": 5e-5,
    "admin-licenses": 5e-5,
    "abnormal-operations": 1e-4,
    "evaluations": 1e-5,
    "object-pool": 1e-4,
    "inspectors": 2e-4,
    "cases": 2e-6,
    "results": 1e-5,
}


def fingerprint() -> str:
    """Hash of the generator's code and reference data, so a cached world never outlives a change."""
    h = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".csv") and "__pycache__" not in path.parts:
            h.update(path.relative_to(package).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:12]


def fmt(dt: datetime) -> str:
    return dt.isoformat(" ", "seconds")


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def draw_count(rng: random.Random, expected: float) -> int:
    """A whole number with the given mean (floor plus a coin for the fraction)."""
    n = int(expected)
    return n + (1 if rng.random() < expected - n else 0)


class World:
    """All records of the four systems, their clock, and the day-by-day life of the county.

    Every method takes the world's lock, so several servers may share one world.
    """

    def __init__(self, seed: int = 20260701, scale: float = 1.0, progress: Progress | None = None) -> None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self._init_core(seed, scale)
        self._build(progress or (lambda *_: None))

    # --- construction -------------------------------------------------------------------------
    def _init_core(self, seed: int, scale: float) -> None:
        self.seed, self.scale = int(seed), float(scale)
        self.lock = threading.RLock()
        self.cal = calendar()
        self.depts = departments()
        self.systems = {name: [r.name for r in s.resources] for name, s in catalog.systems().items()}
        self.system_of = {r: s for s, rs in self.systems.items() for r in rs}
        self._stores = {r: ResourceStore(r) for r in self.system_of}
        self._fields = {r.name: r.fields for s in catalog.systems().values() for r in s.resources}
        self._conforms: dict[str, bool] = {}
        self._seq: Counter = Counter()
        self._heap: list = []
        self._evseq = 0
        self._pending: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
        self._building = True
        self._cutoff = BASE_CLOCK
        self._clock = BASE_CLOCK
        self._only: set[str] | None = None
        self.day = 0
        self.reg = Registry()
        self.dirt_counts: Counter = Counter()
        self.workdays_per_year = len(self.cal.between(BASE_START, BASE_END))

    def _build(self, progress: Progress) -> None:
        base_days = self.cal.between(BASE_START, BASE_END)
        gov_service.build_service_items(self)
        inspection.build_reference(self)
        market.build_stock(self)
        inspection.build_object_pool(self)
        for res in ("entities", "abnormal-operations", "admin-licenses", "admin-penalties", "tasks", "cases"):
            expected, before = round(ANNUAL[res] * self.scale), len(self._pending[res])
            for i, day in enumerate(base_days):
                self._daily(res, day)
                if i % 60 == 59 or i == len(base_days) - 1:
                    progress(f"generating {res}", len(self._pending[res]) - before, expected)
            if res == "admin-penalties":
                credit.top_up_repairs(self)
        credit.build_stock_ratings(self)
        for res, records in self._pending.items():
            self._stores[res].load_encoded(records)
            progress(f"indexing {res}", len(records), len(records))
        self._pending.clear()
        self._showcase_dirt()
        self._building = False

    def _showcase_dirt(self) -> None:
        """Dirty one record per kind on top of the random rates, so even the smallest world shows every kind."""
        rng = self.rng("dirt", "showcase")
        by_code = {d.code: d for d in self.depts}
        for kind, res, field, qualifies, change in SHOWCASE:
            store = self._stores[res]
            for rid in store.random_ids(rng, 200):
                rec = store.get(rid)
                value = rec[field]
                if isinstance(value, str) and value and qualifies(value, rec):
                    if change is None:  # a department name or short alias instead of its code
                        dept = by_code.get(value)
                        if dept is None:
                            continue
                        new = dept.name if kind == "dept_name" else (dept.aliases or (dept.name,))[0]
                    else:
                        new = change(value)
                    rec[field] = new
                    store.replace(rec)
                    self.dirt_counts[(res, kind)] += 1
                    break

    def _daily(self, res: str, day: date) -> None:
        rng = self.rng(res, day.isoformat())
        expected = ANNUAL[res] * self.scale / self.workdays_per_year if self.cal.is_workday(day) else 0.0
        DAILY[res](self, day, draw_count(rng, expected), rng)

    # --- services for the generators -------------------------------------------------------------
    def rng(self, *parts: object) -> random.Random:
        """A random stream fixed by the seed, the scale and what it is for."""
        return random.Random("|".join([str(self.seed), repr(self.scale), *map(str, parts)]))

    def next_seq(self, key: str) -> int:
        self._seq[key] += 1
        return self._seq[key]

    def dirt(self, resource: str, rng: random.Random) -> Dirt:
        return Dirt(rng, self.dirt_counts, resource)

    def emit(self, resource: str, events: list[tuple[datetime, dict]]) -> None:
        """Record a life: the first event carries the full record, later ones patch it.

        While the base year is built, everything up to the base clock is merged into the record
        as first served; anything later waits in the event queue for advance().
        """
        if self._only is not None and resource not in self._only:
            return
        if not self._conforms.setdefault(resource, list(events[0][1]) == list(self._fields[resource])):
            events = [(events[0][0], self._conform(resource, events[0][1])), *events[1:]]
        rid = events[0][1]["id"]
        i = 0
        if self._building:
            rec = None
            while i < len(events) and events[i][0] <= self._cutoff:
                if rec is None:
                    rec = dict(events[i][1])
                else:
                    rec.update(events[i][1])
                i += 1
            if rec is not None:
                rec["updated_at"] = ua = fmt(events[i - 1][0])
                self._pending[resource].append((ua + rid, encode(rec)))
        for j in range(i, len(events)):
            dt, payload = events[j]
            self._push(dt, "create" if j == 0 else "patch", resource, rid, payload)

    def _conform(self, resource: str, rec: dict) -> dict:
        """The record with exactly the catalog's fields, in its order (fields new to systems.yml are null)."""
        return {f: rec.get(f, False if f == "is_deleted" else None) for f in self._fields[resource]}

    def _push(self, dt: datetime, kind: str, resource: str, rid: str, payload) -> None:
        self._evseq += 1
        heapq.heappush(self._heap, (fmt(dt), self._evseq, kind, resource, rid, payload))

    # --- the clock -------------------------------------------------------------------------------
    @property
    def clock(self) -> datetime:
        """Simulated now (Beijing time, naive)."""
        return self._clock

    def advance(self, days: int = 1, progress: Progress | None = None) -> None:
        with self.lock:
            for i in range(days):
                self._advance_one()
                if progress is not None and (i % 10 == 9 or i == days - 1):
                    progress("advancing days", i + 1, days)

    def _advance_one(self) -> None:
        day = BASE_CLOCK.date() + timedelta(days=self.day)
        end = datetime.combine(day, time()) + timedelta(days=1)
        for res in DAILY:
            self._daily(res, day)
        inspection.yearly_plans(self, day)
        self._schedule_maintenance(day)
        self._drain(fmt(end))
        self.day += 1
        self._clock = max(end, self._clock)

    def _schedule_maintenance(self, day: date) -> None:
        start = datetime.combine(day, time(8, 0))
        for res, store in self._stores.items():
            if self._only is not None and res not in self._only:
                continue
            rng = self.rng("maintain", res, day.isoformat())
            for kind, rates in (("correct", CORRECT_RATE), ("delete", DELETE_RATE)):
                n = draw_count(rng, len(store) * rates.get(res, 0.0))
                for rid in store.random_ids(rng, n):
                    when = start + timedelta(seconds=rng.randrange(10 * 3600))
                    self._push(when, kind, res, rid, rng.getrandbits(32))

    def _drain(self, until: str) -> None:
        while self._heap and self._heap[0][0] <= until:
            ts, _, kind, res, rid, payload = heapq.heappop(self._heap)
            self._apply(ts, kind, res, rid, payload)

    def _stamp(self, store: ResourceStore, ts: str | None) -> str:
        """A write time strictly after every updated_at already in the resource."""
        if ts is not None and ts > store.max_updated_at:
            return ts
        if not store.max_updated_at:
            return fmt(self._clock)
        return fmt(parse(store.max_updated_at) + ONE_SECOND)

    def _apply(self, ts: str, kind: str, res: str, rid: str, payload) -> None:
        store = self._stores[res]
        if kind == "create":
            if store.raw(rid) is not None:
                return
            rec = dict(payload)
        else:
            rec = store.get(rid)
            if rec is None or rec["is_deleted"]:
                return
        stamp = self._stamp(store, ts)
        if kind == "patch":
            rec.update(payload)
        elif kind == "correct":
            corrections.correct(self, res, rec, random.Random(payload), parse(stamp))
        elif kind == "delete":
            rec["is_deleted"] = True
        rec["updated_at"] = stamp
        store.put(rec)
        self._clock = max(self._clock, parse(stamp))

    # --- what servers and tests use -------------------------------------------------------------
    def store(self, system: str, resource: str) -> ResourceStore:
        if self.system_of.get(resource) != system:
            raise KeyError(f"{system} has no resource {resource!r}; known: {self.systems.get(system)}")
        return self._stores[resource]

    def truth(self, system: str, resource: str) -> dict[str, dict]:
        """Every record as served now, tombstones included, by id."""
        with self.lock:
            return self.store(system, resource).all()

    def counts(self, system: str | None = None) -> dict[str, dict[str, int]]:
        with self.lock:
            return {
                s: {r: len(self._stores[r]) for r in rs}
                for s, rs in self.systems.items()
                if system is None or s == system
            }

    def touch(self, system: str, resource: str, k: int, rng: random.Random) -> list[str]:
        """Correct k random records now, as a source does while a client is paging."""
        with self.lock:
            store = self.store(system, resource)
            touched = []
            for rid in store.random_ids(rng, k):
                rec = store.get(rid)
                stamp = self._stamp(store, None)
                if not rec["is_deleted"]:
                    corrections.correct(self, resource, rec, rng, parse(stamp))
                rec["updated_at"] = stamp
                store.put(rec)
                self._clock = max(self._clock, parse(stamp))
                touched.append(rid)
            return touched

    def state(self) -> dict:
        return {
            "seed": self.seed,
            "scale": self.scale,
            "day": self.day,
            "clock": fmt(self.clock),
            "counts": self.counts(),
        }

    # --- persistence --------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.lock = threading.RLock()

    @classmethod
    def cached(
        cls, seed: int, scale: float, cache_dir: Path | None, progress: Progress | None = None
    ) -> World:
        """The day-0 world, from a pickle under cache_dir when one was made by this generator version."""
        if cache_dir is None:
            return cls(seed, scale, progress)
        stem = f"world-{seed}-{scale!r}-"
        path = Path(cache_dir) / f"{stem}v{GENERATOR_VERSION}-{fingerprint()}.pickle"
        if path.exists():
            try:
                with path.open("rb") as f:
                    world = pickle.load(f)
                if isinstance(world, cls) and world.day == 0:
                    return world
            except Exception:  # noqa: BLE001 - a broken cache is rebuilt, never fatal
                pass
        world = cls(seed, scale, progress)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump(world, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        for stale in Path(cache_dir).glob(f"{stem}*.pickle"):
            if stale != path:
                stale.unlink(missing_ok=True)  # worlds of older generator code
        return world

    # --- benchmark worlds -------------------------------------------------------------------------
    @classmethod
    def single(cls, system: str, resource: str, n: int, seed: int = 20260701) -> World:
        """A world holding only n records of one resource (all others empty), for ingest benchmarks.

        Records are copies of a small world's records with fresh ids and updated_at a few seconds
        after their template's, so every record stays plausible while n can reach millions.
        """
        template = cls(seed, 0.05)
        source = template.store(system, resource)
        originals = sorted(source.all().values(), key=lambda r: (r["updated_at"], r["id"]))
        world = cls.__new__(cls)
        world._init_core(seed, 0.05)
        world.reg = template.reg
        world._seq = template._seq
        world._only = {resource}
        world._building = False
        world._stores[resource].load(_clones(originals, n, resource))
        return world


def _clones(originals: list[dict], n: int, resource: str):
    if not originals:
        return
    prefix = "".join(w[0] for w in resource.split("-")).upper()
    clock = fmt(BASE_CLOCK)
    k = len(originals)
    for i in range(n):
        rec = dict(originals[i % k])
        copy_no = i // k
        rec["id"] = f"{prefix}{i:010d}"
        if copy_no:
            rec["updated_at"] = min(fmt(parse(rec["updated_at"]) + timedelta(seconds=copy_no)), clock)
        yield rec
