"""The RFID adapter service: readers' own JSON in, ``TagPassage`` events out.

Every gate reader in the store file publishes its vendor JSON on
``smartstore/<store>/rfid/<reader>/raw`` (``TOPICS["rfid_raw"]``). The
adapter parses it in the reader's format (``iot.rfid``), runs one
``PassageDetector`` per reader (``iot.rfid_gate``) and publishes each
decided passage on ``rfid/<reader>/passages`` with the EPC decoded
(``iot.epc``): ``epc_uri``/``gtin`` are filled when the scheme is known and
left empty otherwise (counted; an unknown tag walking out is still news).

Vendor channels cannot go through ``Inbox.on`` (there is no payload model
to validate against), so the adapter subscribes to the transport itself and
uses an ``Inbox`` only for its ``reject``: a malformed object, or a message
from a reader the store file does not list, is counted by reason, logged and
dead-lettered on ``rfid/<service_id>/deadletter`` exactly as other services
do. The good objects of a message with a bad one are still used.

Passage ids are ``<reader>:<epc>:<first read, ms>``: a message sent twice
cannot publish a passage twice (its reads are late once the passage is
decided, and a re-decided pass has the same id, which consumers drop).

>>> from pathlib import Path
>>> from iot.bus import LocalTransport
>>> from iot.rfid import TagRead, encode_reads
>>> from iot.store import load_store
>>> store = load_store(Path(__file__).resolve().parents[1] / "stores" / "demo.yaml")
>>> bus, got = LocalTransport(), []
>>> bus.subscribe("smartstore/demo/rfid/+/passages", lambda t, d: got.append(d))
>>> adapter = RfidAdapter(store, bus, now=lambda: 1.8e9)
>>> adapter.start()
>>> reads = [TagRead("rfid-exit", "3074257BF7194E4000001A85", port, -50.0, 1.8e9 + k / 10)
...          for k, port in enumerate([1, 1, 2, 2])]
>>> bus.publish("smartstore/demo/rfid/rfid-exit/raw", encode_reads("impinj", reads,
...             device_name="r700"))
>>> adapter.tick(1.8e9 + 2.0)
>>> TagPassage.model_validate_json(got[0]).epc_uri, adapter.stats()["published"]
('urn:epc:id:sgtin:0614141.812345.6789', 1)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from pydantic import ValidationError

from iot.bus import Inbox, Transport, publish
from iot.epc import EpcError, decode_epc
from iot.payloads import TagPassage
from iot.rfid import parse_reader_message
from iot.rfid_gate import GateSettings, Passage, PassageDetector
from iot.store import RfidReader, Store
from iot.topics import TOPICS, match_topic

__all__ = ["RfidAdapter"]

log = logging.getLogger(__name__)

_MAX_SKIP_KINDS = 32  # distinct non-tag event kinds counted by name; the rest are "other"


class RfidAdapter:
    """Edge service for the store's RFID gate readers.

    ``now`` is only used to stamp dead letters; passages are decided by the
    reads' own times and by ``tick(now_s)``, which the composition root
    calls with event time. Each reader's reads also advance that reader's
    clock (readers' clocks are not compared with each other). All work runs
    in the transport's callback and in ``tick``: wrap the transport in a
    ``SerialTransport`` when a real broker delivers on another thread.
    """

    def __init__(
        self,
        store: Store,
        transport: Transport,
        *,
        now: Callable[[], float],
        settings: GateSettings | None = None,
        service_id: str = "rfid-adapter",
    ) -> None:
        self.store = store
        self.transport = transport
        self.service_id = service_id
        readers = store.devices.rfid_readers
        self.readers: dict[str, RfidReader] = {r.id: r for r in readers}
        self.detectors: dict[str, PassageDetector] = {
            r.id: PassageDetector(r, settings) for r in readers if r.gate is not None
        }
        # Used only for reject(): the same counting, logging and dead letters as every service.
        self.inbox = Inbox(
            transport,
            store.store_id,
            service_kind="rfid",
            service_id=service_id,
            now=now,
            known_devices=self.readers,
        )
        self.counts: Counter[str] = Counter()
        self._started = False

    def start(self) -> None:
        """Subscribe to every reader's raw topic (one wildcard, so strangers can be refused)."""
        if self._started:
            return
        channel = TOPICS["rfid_raw"]
        self.transport.subscribe(channel.filter(self.store.store_id), self._on_raw, channel.qos)
        self._started = True

    def tick(self, now_s: float) -> None:
        """Close every pass quiet at event time ``now_s`` and publish its passage."""
        for reader_id in sorted(self.detectors):
            self._publish_all(self.detectors[reader_id].tick(now_s))

    def stats(self) -> dict[str, int]:
        """Counters: messages, reads, passages, refusals by reason, skipped events by kind."""
        out: Counter[str] = Counter(self.counts)
        for det in self.detectors.values():
            out.update(det.counts)
            out["tracked tags"] += det.tracked_tags
        for reason, n in self.inbox.rejected.items():
            out[f"rejected {reason}"] += n
        return dict(sorted(out.items()))

    def _on_raw(self, topic: str, data: bytes) -> None:
        found = match_topic(topic)
        if found is None or found[0] is not TOPICS["rfid_raw"] or found[1] != self.store.store_id:
            self.inbox.reject(topic, data, "unknown topic")
            return
        reader_id = found[2]
        reader = self.readers.get(reader_id)
        if reader is None:
            detail = f"reader {reader_id!r} is not in the store file"
            self.inbox.reject(topic, data, "unknown device", detail)
            return
        detector = self.detectors.get(reader.id)
        if detector is None:  # an inventory reader, not a gate: nothing to decide here
            self.counts["messages from readers without a gate"] += 1
            return
        self.counts["messages"] += 1
        parsed = parse_reader_message(reader.format, data, reader.id)
        for err in parsed.errors:
            excerpt = err.excerpt.encode() if err.excerpt else data
            self.inbox.reject(topic, excerpt, err.reason, str(err))
        for kind, n in parsed.skipped.items():
            self._count_skipped(kind, n)
        for read in parsed.reads:
            detector.feed(read)
        if parsed.reads:
            self._publish_all(detector.tick(max(r.time_s for r in parsed.reads)))

    def _count_skipped(self, kind: str, n: int) -> None:
        key = f"skipped {kind}"
        kinds = sum(1 for k in self.counts if k.startswith("skipped "))
        if key not in self.counts and kinds >= _MAX_SKIP_KINDS:
            key = "skipped other"
        self.counts[key] += n

    def _publish_all(self, passages: list[Passage]) -> None:
        for passage in passages:
            event = self._event(passage)
            if event is not None:
                publish(self.transport, self.store.store_id, event)
                self.counts["published"] += 1

    def _event(self, p: Passage) -> TagPassage | None:
        uri: str | None = None
        gtin: str | None = None
        try:
            epc = decode_epc(p.epc_hex)
            uri, gtin = epc.uri, epc.gtin
        except EpcError as exc:
            self.counts["undecoded EPC"] += 1
            if self.counts["undecoded EPC"] <= 10:
                log.info("%s: passage of an EPC it cannot decode: %s", self.service_id, exc)
        try:
            return TagPassage(
                # Reader, EPC and first read identify the pass: a repeat has the same id.
                id=f"{p.reader_id}:{p.epc_hex}:{round(p.first_seen_s * 1000)}",
                event_time_s=p.last_seen_s,
                device_id=p.reader_id,
                epc_hex=p.epc_hex,
                epc_uri=uri,
                gtin=gtin,
                gate_id=p.gate_id,
                direction=p.direction,
                first_seen_s=p.first_seen_s,
                zones=list(p.zones),
                reads=min(p.reads, 1_000_000),
                peak_rssi_dbm=p.peak_rssi_dbm,
            )
        except ValidationError as exc:  # e.g. a reader id too long for an event id
            self.counts["invalid passage"] += 1
            log.warning("%s: passage of %s not publishable: %s", self.service_id, p.epc_hex, exc)
            return None
