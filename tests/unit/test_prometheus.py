"""Operations metrics: the bus, brain, camera and HTTP hooks, and the /metrics page.

prometheus_client's default registry is process-wide, so every test reads a
metric before and after and asserts the delta.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from checkout.brain import StoreBrain
from checkout.ledger import Ledger
from checkout.metrics import CONTENT_TYPE, UNMATCHED, HttpMetricsMiddleware, metrics_router
from iot.bus import Inbox, LocalTransport, publish
from iot.metrics import CAMERA_FPS, OTHER, BoundedLabel, CameraRates, FusionTimer
from iot.payloads import GateEntry
from iot.store import Store, load_store
from iot.topics import TOPICS
from tests.unit.checkout.checkout_world import EXIT_XY, World
from vision.detections import Detections
from vision.edge import EdgeVisionPipeline

DEMO = Path(__file__).resolve().parents[2] / "stores" / "demo.yaml"
STAND_P1 = (3.0, 3.0)  # in front of g01-s1-p1 (SKU001 still water)


@pytest.fixture(scope="module")
def store() -> Store:
    return load_store(DEMO)


def value(name: str, **labels: str) -> float:
    """A sample's current value in the default registry (0 when it does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def entry(event_id: str) -> GateEntry:
    return GateEntry(id=event_id, event_time_s=1e9, device_id="gate-in", token="tok-m")


# --- the bus ---


def test_a_message_through_an_inbox_counts_as_one_event_in() -> None:
    bus = LocalTransport()
    inbox = Inbox(bus, "demo", service_kind="brain", service_id="m-in", now=lambda: 1e9)
    seen: list[object] = []
    inbox.on(TOPICS["gate_entries"], seen.append)
    labels = {"store": "demo", "service": "m-in", "channel": "gate_entries"}
    before = value("smartstore_events_in_total", **labels)
    publish(bus, "demo", entry("m-e1"))
    publish(bus, "demo", entry("m-e2"))
    assert len(seen) == 2
    assert value("smartstore_events_in_total", **labels) - before == 2


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (b'{"id": "x", "event_time_s": "soon"}', "invalid payload"),
    ],
)
def test_a_refused_payload_counts_as_a_dead_letter_not_an_event(data: bytes, reason: str) -> None:
    bus = LocalTransport()
    inbox = Inbox(bus, "demo", service_kind="brain", service_id="m-dl", now=lambda: 1e9)
    inbox.on(TOPICS["gate_entries"], lambda msg: None)
    dead = {"store": "demo", "service": "m-dl", "reason": reason}
    events = {"store": "demo", "service": "m-dl", "channel": "gate_entries"}
    before_dead, before_in = (
        value("smartstore_dead_letters_total", **dead),
        value("smartstore_events_in_total", **events),
    )
    bus.publish("smartstore/demo/gate/gate-in/entries", data, 1, False)
    assert value("smartstore_dead_letters_total", **dead) - before_dead == 1
    assert value("smartstore_events_in_total", **events) == before_in


def test_a_duplicate_is_one_event_in_and_one_dead_letter() -> None:
    bus = LocalTransport()
    inbox = Inbox(bus, "demo", service_kind="brain", service_id="m-dup", now=lambda: 1e9)
    inbox.on(TOPICS["gate_entries"], lambda msg: None)
    dead = {"store": "demo", "service": "m-dup", "reason": "duplicate id"}
    events = {"store": "demo", "service": "m-dup", "channel": "gate_entries"}
    before_dead, before_in = (
        value("smartstore_dead_letters_total", **dead),
        value("smartstore_events_in_total", **events),
    )
    publish(bus, "demo", entry("m-dup-1"))
    publish(bus, "demo", entry("m-dup-1"))
    assert value("smartstore_events_in_total", **events) - before_in == 1
    assert value("smartstore_dead_letters_total", **dead) - before_dead == 1


# --- the brain ---


def brain_world(store: Store) -> World:
    transport = LocalTransport()
    world = World(store, None, transport, np.random.default_rng(7))  # type: ignore[arg-type]
    world.brain = StoreBrain(store, transport, Ledger(":memory:"))
    world.brain.start()
    return world


def visit(world: World, token: str) -> None:
    """Scan in at 1 s, stand at g01-s1-p1 from 4 to 12 s, leave at 20 s."""
    world.walk(token, (0.5, 1.8, 0.6), (4.0, *STAND_P1), (12.0, *STAND_P1), (20.0, *EXIT_XY))
    world.entry(1.0, token)
    world.exit(20.0)


def receipts_now() -> tuple[float, float]:
    return (
        value("smartstore_receipts_total", store="demo"),
        value("smartstore_receipts_needing_review_total", store="demo"),
    )


def test_a_clean_receipt_counts_once_and_not_for_review(store: Store) -> None:
    world = brain_world(store)
    visit(world, "tok-metrics-clean")
    world.shelf("m-pick", "g01-s1-p1", -522.0, 5.0, 6.0)  # 1 x still water
    issued, review = receipts_now()
    cart = {"store": "demo", "outcome": "cart"}
    fused = value("smartstore_fusion_seconds_count", **cart)
    lagged = value("smartstore_fusion_lag_seconds_count", **cart)
    lag_sum = value("smartstore_fusion_lag_seconds_sum", **cart)
    world.run(25.0)
    [receipt] = world.brain.receipts
    assert not receipt.needs_review, receipt.review_reasons
    assert receipts_now() == (issued + 1, review)
    assert value("smartstore_fusion_seconds_count", **cart) - fused == 1
    assert value("smartstore_fusion_lag_seconds_count", **cart) - lagged == 1
    # decided no sooner than the brain's attribution delay after the shelf settled
    delay = world.brain.settings.attribution_delay_s
    assert value("smartstore_fusion_lag_seconds_sum", **cart) - lag_sum >= delay - 1e-6
    world.brain.close()


def test_a_flagged_receipt_counts_for_review(store: Store) -> None:
    world = brain_world(store)
    visit(world, "tok-metrics-odd")
    world.shelf("m-odd", "g01-s1-p1", 300.0, 5.0, 6.0)  # a put that fits nothing
    issued, review = receipts_now()
    unexplained = value("smartstore_fusion_seconds_count", store="demo", outcome="unexplained")
    world.run(25.0)
    [receipt] = world.brain.receipts
    assert receipt.needs_review
    assert receipts_now() == (issued + 1, review + 1)
    after = value("smartstore_fusion_seconds_count", store="demo", outcome="unexplained")
    assert after - unexplained == 1
    world.brain.close()


def test_the_fusion_timer_forgets_the_oldest_arrivals_past_its_bound() -> None:
    ticks = iter(float(t) for t in range(100))
    timer = FusionTimer("demo-timer", clock=ticks.__next__, max_pending=2)
    for event_id in ("a", "b", "c"):
        timer.arrived(event_id)
    assert timer.decided("a", "cart", event_time_s=10.0, decided_at_s=12.0) == (None, 2.0)
    wall, lag = timer.decided("c", "cart", event_time_s=10.0, decided_at_s=11.5)
    assert wall == 1.0 and lag == 1.5  # arrived at tick 2, decided at tick 3


# --- cameras ---


class EmptyDetector:
    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        return [Detections.empty() for _ in frames]


def test_the_edge_pipeline_reports_frames_per_camera(store: Store) -> None:
    pipe = EdgeVisionPipeline(store, EmptyDetector(), None)
    rng = np.random.default_rng(1)
    for k in range(5):
        frames = {
            cid: rng.integers(40, 200, size=(480, 640, 3), dtype=np.uint8)
            for cid in pipe.camera_ids
        }
        pipe.step(1.8e9 + k * 0.2, frames)
    fps = CAMERA_FPS.fps()
    assert pipe.camera_ids
    for cid in pipe.camera_ids:
        assert fps[(store.store_id, cid)] > 0


def test_camera_rates_fall_to_zero_when_frames_stop() -> None:
    now = [100.0]
    rates = CameraRates(window_s=5.0, clock=lambda: now[0])
    for k in range(50):  # 10 frames a second for 5 s
        now[0] = 100.0 + k / 10
        rates.frames("s", ["cam-a"])
    now[0] = 105.0
    assert rates.fps()[("s", "cam-a")] == pytest.approx(10.0, abs=1.0)
    now[0] = 120.0
    assert rates.fps()[("s", "cam-a")] == 0.0
    registry = CollectorRegistry()
    registry.register(rates)
    labels = {"store": "s", "camera": "cam-a"}
    assert registry.get_sample_value("smartstore_camera_fps", labels) == 0


def test_camera_rates_refuse_a_window_under_a_second() -> None:
    with pytest.raises(ValueError, match="window_s"):
        CameraRates(window_s=0.5)


def test_a_bounded_label_folds_newcomers_into_other() -> None:
    label = BoundedLabel(max_values=3, max_chars=5)
    assert [label(v) for v in ("a", "b", "c", "d", "a", "longer-than-five")] == [
        "a",
        "b",
        "c",
        OTHER,
        "a",
        OTHER,
    ]


# --- HTTP and the page ---


def app_with_metrics() -> TestClient:
    app = FastAPI()
    app.add_middleware(HttpMetricsMiddleware)
    app.include_router(metrics_router())

    @app.get("/receipts/{receipt_id}")
    def receipt(receipt_id: str) -> dict[str, str]:
        if receipt_id == "missing":
            raise HTTPException(404, "no such receipt")
        return {"id": receipt_id}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    return TestClient(app, raise_server_exceptions=False)


def http(route: str, status: str, method: str = "GET") -> float:
    return value("smartstore_http_requests_total", method=method, route=route, status=status)


def test_http_requests_count_under_the_route_template_never_the_path() -> None:
    client = app_with_metrics()
    ok, missing = http("/receipts/{receipt_id}", "200"), http("/receipts/{receipt_id}", "404")
    nowhere, broken = http(UNMATCHED, "404"), http("/boom", "500")
    assert client.get("/receipts/r-secret-123?token=tok-in-query").status_code == 200
    assert client.get("/receipts/missing").status_code == 404
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/boom").status_code == 500
    assert http("/receipts/{receipt_id}", "200") - ok == 1
    assert http("/receipts/{receipt_id}", "404") - missing == 1
    assert http(UNMATCHED, "404") - nowhere == 1
    assert http("/boom", "500") - broken == 1
    page = client.get("/metrics").text
    for concrete in ("r-secret-123", "tok-in-query", "/no/such/page"):
        assert concrete not in page


def test_the_page_parses_and_holds_every_family_and_no_personal_data(store: Store) -> None:
    world = brain_world(store)
    visit(world, "tok-metrics-page")
    world.shelf("m-page", "g01-s1-p1", -522.0, 5.0, 6.0)
    world.run(25.0)
    world.brain.close()
    [receipt] = world.brain.receipts
    client = app_with_metrics()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name in (
        "smartstore_events_in",
        "smartstore_dead_letters",
        "smartstore_fusion_seconds",
        "smartstore_fusion_lag_seconds",
        "smartstore_receipts",
        "smartstore_receipts_needing_review",
        "smartstore_camera_fps",
        "smartstore_http_requests",
        "smartstore_http_request_seconds",
    ):
        assert name in families, sorted(families)
    assert families["smartstore_fusion_seconds"].type == "histogram"
    assert families["smartstore_camera_fps"].type == "gauge"
    brain_in = [
        s
        for s in families["smartstore_events_in"].samples
        if s.labels.get("service") == "brain" and s.labels.get("channel") == "shelf_events"
    ]
    assert brain_in and brain_in[0].value >= 1
    for personal in ("tok-metrics-page", receipt.session_id, receipt.id, "m-page"):
        assert personal not in response.text
