"""Simulated RFID: tagged units carried through the gate readers, and tags parked by the door.

Every unit of an RFID-tagged SKU a person carries out gets its own SGTIN-96
EPC (serials numbered per SKU in exit order). A gate reader inventories every
``ROUND_S``: each tag within an antenna's range is read with probability
``READ_PROB`` and an RSSI that falls with distance. Tagged items on a display
by a reader (``theft.stray_tags_per_reader``) sit in its inner field for the
whole run and are read every ``STRAY_EVERY_S``. Reads go out in the reader's
own JSON (Impinj or Zebra, per the store file) on its ``rfid/<id>/raw`` topic,
one message per ``MESSAGE_S`` window, as real readers batch their reports.

>>> from pathlib import Path
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> tags = carried_tags(store, [("v-1", {"SKU020": 2, "SKU001": 1})])
>>> [t.sku for t in tags["v-1"]], tags["v-1"][0].epc_hex[:2]
(['SKU020', 'SKU020'], '30')
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from iot.epc import encode_sgtin96
from iot.rfid import TagRead, encode_reads
from iot.store import RfidReader, Store
from iot.topics import TOPICS
from sim.shoppers import VisitPlan

__all__ = ["CarriedTag", "RawMessage", "carried_tags", "reader_stream"]

ROUND_S = 0.1  # one inventory round of the reader
READ_PROB = 0.7  # a tag in the field answers in a round
STRAY_EVERY_S = 2.0
MESSAGE_S = 0.25
LOOK_BACK_S = 4.0  # reads of a leaving person start this long before the exit line
SERIAL_BASE = 1000
STRAY_SERIAL_BASE = 900_000


@dataclass(frozen=True)
class CarriedTag:
    token: str
    sku: str
    epc_hex: str


@dataclass(frozen=True)
class RawMessage:
    """A device's own bytes on a vendor-format topic (not one of our payloads)."""

    topic: str
    data: bytes
    qos: int = 0


def carried_tags(
    store: Store, baskets: Sequence[tuple[str, dict[str, int]]]
) -> dict[str, list[CarriedTag]]:
    """token -> the tagged units its person carried out; ``baskets`` in exit order."""
    serial: dict[str, int] = {}
    out: dict[str, list[CarriedTag]] = {}
    for token, basket in baskets:
        tags = out.setdefault(token, [])
        for sku, qty in sorted(basket.items()):
            item = store.items[sku]
            for _ in range(max(qty, 0) if item.rfid_tagged else 0):
                serial[sku] = serial.get(sku, SERIAL_BASE) + 1
                tags.append(CarriedTag(token, sku, encode_sgtin96(item.gtin, serial[sku])))
    return out


def _rssi_dbm(distance_m: float, rng: np.random.Generator) -> float:
    return round(-45.0 - 18.0 * distance_m + float(rng.normal(0.0, 1.5)), 1)


def _reads_of_walkers(
    reader: RfidReader,
    walkers: Sequence[tuple[VisitPlan, list[CarriedTag]]],
    rng: np.random.Generator,
) -> list[TagRead]:
    reads = []
    for visit, tags in walkers:
        if not tags:
            continue
        t0, t1 = visit.exit_s - LOOK_BACK_S, visit.track_end_s
        times = np.arange(t0, t1, ROUND_S)
        xs, ys = visit.position(times)
        for t, x, y in zip(times.tolist(), xs.tolist(), ys.tolist(), strict=True):
            for antenna in reader.antennas:
                d = math.dist((x, y), antenna.position_m)
                if d > antenna.range_m:
                    continue
                for tag in tags:
                    if rng.random() < READ_PROB:
                        reads.append(
                            TagRead(reader.id, tag.epc_hex, antenna.port, _rssi_dbm(d, rng), t)
                        )
    return reads


def _stray_reads(
    store: Store, reader: RfidReader, n: int, *, start_s: float, end_s: float, seed: int
) -> list[TagRead]:
    if n == 0:
        return []
    rng = np.random.default_rng([seed, 31, sum(map(ord, reader.id))])
    inner = next(a for a in reader.antennas if a.zone == "inner")
    tagged = [i for i in store.catalog.items if i.rfid_tagged]
    tags = [encode_sgtin96(tagged[k % len(tagged)].gtin, STRAY_SERIAL_BASE + k) for k in range(n)]
    reads = []
    for t in np.arange(start_s + float(rng.uniform(0, STRAY_EVERY_S)), end_s, STRAY_EVERY_S):
        for epc in tags:
            if rng.random() < 0.9:
                d = inner.range_m * 0.6
                reads.append(TagRead(reader.id, epc, inner.port, _rssi_dbm(d, rng), float(t)))
    return reads


def reader_stream(
    store: Store,
    reader: RfidReader,
    walkers: Sequence[tuple[VisitPlan, list[CarriedTag]]],
    *,
    stray_tags: int,
    start_s: float,
    end_s: float,
    seed: int,
    rank: int,
) -> Iterator[tuple[float, int, int, RawMessage]]:
    """The reader's messages in send order: (send time, rank, sequence, message)."""
    rng = np.random.default_rng([seed, 30, sum(map(ord, reader.id))])
    gate = {g.id: g for g in store.floor.gates}.get(reader.gate or "")
    leaving = [w for w in walkers if gate is not None and w[0].exit_gate_id == gate.id]
    reads = _reads_of_walkers(reader, leaving, rng)
    reads += _stray_reads(store, reader, stray_tags, start_s=start_s, end_s=end_s, seed=seed)
    reads.sort(key=lambda r: (r.time_s, r.epc_hex, r.antenna_port))
    topic = TOPICS["rfid_raw"].topic(store.store_id, reader.id)
    device = reader.id if reader.format == "impinj" else "84:24:8D:00:00:01"
    batch: list[TagRead] = []
    window_end = -math.inf
    sent = 0
    for read in reads:
        if read.time_s >= window_end and batch:
            yield (window_end, rank, sent, _message(reader, topic, batch, device, sent))
            sent += 1
            batch = []
        if not batch:
            window_end = read.time_s + MESSAGE_S
        batch.append(read)
    if batch:
        yield (window_end, rank, sent, _message(reader, topic, batch, device, sent))


def _message(
    reader: RfidReader, topic: str, reads: list[TagRead], device: str, n: int
) -> RawMessage:
    data = encode_reads(reader.format, reads, device_name=device, first_event_num=1 + n * 1000)
    return RawMessage(topic, data, TOPICS["rfid_raw"].qos)
