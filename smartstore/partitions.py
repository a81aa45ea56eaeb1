"""Which checkout worker runs which store: a balanced, stable, deterministic assignment.

A store is the unit of partitioning: every event of one store must be
handled, in order, by one brain, and an MQTT topic filter can name exactly
one store (``smartstore/<store>/...``). Every worker of a pool computes the
same assignment from the same two lists (the pool's stores and its live
workers), so no coordinator is needed: ``assign`` is a pure function.

It is *rendezvous hashing with bounded loads*: each store ranks the workers
by a hash of (store, worker) and goes to the highest-ranked worker that
still has room, room being ``ceil(stores / workers)``. So:

- **balanced**: no worker holds more than ``ceil(N / W)`` stores (20 stores
  on 2 workers: exactly 10 and 10; plain ``hash % W`` can give 12 and 8);
- **stable**: when a worker leaves, the stores of the others mostly stay
  where they are, and only the leaver's stores (and a few bumped by the
  bound) move, so takeovers rebuild few carts;
- **deterministic**: the hash is BLAKE2b, not Python's salted ``hash()``,
  so every process and machine agrees.

>>> plan = assign([f"s{k:02d}" for k in range(20)], ["w1", "w2"])
>>> sorted(len(stores) for stores in plan.values())
[10, 10]
>>> assign(["a", "b", "c"], ["w1"]) == {"w1": ["a", "b", "c"]}
True
>>> owner_of(plan)["s07"] in {"w1", "w2"}
True
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["StaticSlot", "assign", "check_id", "owner_of", "parse_slot"]

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def _score(store_id: str, worker_id: str) -> int:
    digest = hashlib.blake2b(f"{store_id}\0{worker_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def assign(stores: Iterable[str], workers: Iterable[str]) -> dict[str, list[str]]:
    """``{worker: [its stores, sorted]}`` for every worker (an idle one gets ``[]``).

    Raises ``ValueError`` when there are stores but no workers, or an id repeats.
    """
    store_ids = sorted(stores)
    worker_ids = sorted(workers)
    for name, ids in (("store", store_ids), ("worker", worker_ids)):
        if len(set(ids)) != len(ids):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"{name} id(s) {', '.join(dupes)} given twice; ids must be unique")
    plan: dict[str, list[str]] = {w: [] for w in worker_ids}
    if not store_ids:
        return plan
    if not worker_ids:
        raise ValueError(f"{len(store_ids)} store(s) but no live worker to run them")
    room = math.ceil(len(store_ids) / len(worker_ids))
    for store_id in store_ids:
        ranked = sorted(worker_ids, key=lambda w: (-_score(store_id, w), w))
        for worker_id in ranked:
            if len(plan[worker_id]) < room:
                plan[worker_id].append(store_id)
                break
    return {w: sorted(s) for w, s in plan.items()}


def owner_of(plan: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """``{store: worker}`` from ``assign``'s ``{worker: stores}``."""
    return {store: worker for worker, stores in plan.items() for store in stores}


class StaticSlot:
    """A pinned place in a fixed-size pool (``--partition I/N``): no membership, no takeover.

    >>> stores = ["a", "b", "c", "d"]
    >>> sorted(StaticSlot(0, 2).stores(stores) + StaticSlot(1, 2).stores(stores)) == stores
    True
    """

    def __init__(self, index: int, count: int) -> None:
        if count < 1 or not 0 <= index < count:
            raise ValueError(
                f"--partition {index}/{count}: write I/N with 0 <= I < N, e.g. 0/2 and 1/2"
            )
        self.index, self.count = index, count

    def stores(self, stores: Iterable[str]) -> list[str]:
        """The stores this slot runs: the ``assign`` share of slot I among slots 0..N-1."""
        return assign(stores, [f"slot-{k}" for k in range(self.count)])[f"slot-{self.index}"]

    def __repr__(self) -> str:
        return f"StaticSlot({self.index}/{self.count})"


def parse_slot(text: str) -> StaticSlot | None:
    """``--partition``: ``auto`` (None: follow the pool's live workers) or ``I/N``."""
    if text == "auto":
        return None
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit():
        raise ValueError(f"--partition {text!r}: write auto, or I/N such as 0/2")
    return StaticSlot(int(index), int(count))


def check_id(what: str, value: str) -> str:
    """A worker, edge or pool id that is safe as a topic segment and a client id."""
    if not _SAFE_ID.match(value):
        raise ValueError(
            f"{what} {value!r}: use 1-64 of A-Z a-z 0-9 . _ - (it becomes a topic segment "
            "and part of an MQTT client id)"
        )
    return value
