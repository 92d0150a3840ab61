"""One resource's records as cached JSON bytes with a sorted (updated_at, id) index for fast paging."""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

import orjson

TS_LEN = 19  # 'YYYY-MM-DD HH:MM:SS'


def encode(rec: dict) -> bytes:
    """Record as compact JSON bytes.

    The copy matters: orjson hands back bytes that keep its whole working buffer (about 8 KiB)
    allocated, which a million cached records cannot afford.
    """
    return bytes(memoryview(orjson.dumps(rec)))


class ResourceStore:
    """Records of one resource.

    The index holds updated_at + id as one string: updated_at has a fixed width, so string order
    equals (updated_at, id) order and bisect works on plain strings, which keeps a million records
    cheap in memory.
    """

    __slots__ = ("name", "_data", "_keys", "_ids", "max_updated_at")

    def __init__(self, name: str) -> None:
        self.name = name
        self._data: dict[str, bytes] = {}
        self._keys: list[str] = []
        self._ids: list[str] = []  # creation order, for drawing random records
        self.max_updated_at = ""

    def __len__(self) -> int:
        return len(self._data)

    def load(self, records: Iterable[dict]) -> None:
        """Bulk insert of new records (ids must be new); sorts the index once."""
        self.load_encoded((rec["updated_at"] + rec["id"], encode(rec)) for rec in records)

    def load_encoded(self, pairs: Iterable[tuple[str, bytes]]) -> None:
        """Bulk insert of (updated_at + id, JSON bytes) pairs of new records."""
        for key, raw in pairs:
            rid = key[TS_LEN:]
            self._data[rid] = raw
            self._ids.append(rid)
            self._keys.append(key)
        self._keys.sort()
        if self._keys:
            self.max_updated_at = max(self.max_updated_at, self._keys[-1][:TS_LEN])

    def put(self, rec: dict) -> None:
        """Insert or replace one record; its updated_at must not be older than any other's."""
        rid, ua = rec["id"], rec["updated_at"]
        if ua < self.max_updated_at:
            raise ValueError(f"{self.name}: write at {ua} older than {self.max_updated_at}")
        old = self._data.get(rid)
        if old is None:
            self._ids.append(rid)
        else:
            old_key = orjson.loads(old)["updated_at"] + rid
            i = bisect_left(self._keys, old_key)
            del self._keys[i]
        self._data[rid] = encode(rec)
        self._keys.append(ua + rid)
        if len(self._keys) > 1 and self._keys[-2] > self._keys[-1]:
            self._keys.sort()  # only when two writes share a second and ids run backwards
        self.max_updated_at = ua

    def replace(self, rec: dict) -> None:
        """New content for an existing record whose updated_at stays the same (world building only)."""
        old = self.get(rec["id"])
        if old is None or old["updated_at"] != rec["updated_at"]:
            raise ValueError(f"{self.name}: replace() needs an existing record with the same updated_at")
        self._data[rec["id"]] = encode(rec)

    def get(self, rid: str) -> dict | None:
        raw = self._data.get(rid)
        return orjson.loads(raw) if raw is not None else None

    def raw(self, rid: str) -> bytes | None:
        return self._data.get(rid)

    def random_ids(self, rng: random.Random, k: int) -> list[str]:
        if not self._ids:
            return []
        return [self._ids[rng.randrange(len(self._ids))] for _ in range(k)]

    def ids(self) -> list[str]:
        return list(self._ids)

    def all(self) -> dict[str, dict]:
        return {rid: orjson.loads(raw) for rid, raw in self._data.items()}

    def window(self, since: str | None, until: str | None) -> tuple[int, int]:
        """Index range of [since, until) in (updated_at, id) order."""
        lo = bisect_left(self._keys, since) if since else 0
        hi = bisect_left(self._keys, until) if until else len(self._keys)
        return lo, max(lo, hi)

    def after(self, since: str, after_id: str) -> int:
        """First index strictly after (since, after_id)."""
        return bisect_right(self._keys, since + after_id)

    def slice(self, start: int, stop: int) -> list[bytes]:
        data = self._data
        return [data[k[TS_LEN:]] for k in self._keys[start:stop]]
