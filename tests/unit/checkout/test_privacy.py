"""Privacy of the store's analytics and memory.

- Analytics (footfall, heatmap, EPCIS export, metrics, service counters) of a
  whole run carry no shopper identity: no account id, username or display
  name, only pseudonymous scan-in tokens and the session ids derived from them.
- Raw track history is bounded in time in every service that keeps any.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import numpy as np
import prometheus_client
import pytest
from checkout_world import EXIT_XY, T0, World

from checkout.auth import AccountBook, Principal
from checkout.heatmap import window_png
from checkout.sessions import session_id_for
from iot.bus import LocalTransport, publish
from iot.payloads import TrackBatch, TrackPoint
from iot.store import Store
from smartstore.operations import StoreOperations

PEOPLE = [
    ("ana.lopez@example.org", "Ana López"),
    ("bjorn_k", "Björn Karlsson"),
    ("chen.wei", "Chen Wei"),
]
STANDS = [(3.0, 3.0), (3.0, 5.0), (10.0, 3.0)]  # at g01, g03, g02
PLATES = ["g01-s1-p1", "g03-s1-p1", "g02-s1-p1"]


def shoppers(accounts: AccountBook) -> list[tuple[Principal, str]]:
    """Each person's account and the QR scan-in token the shopper app would show."""
    out = []
    for username, name in PEOPLE:
        who = accounts.create_account(
            username, "a long test password", role="shopper", display_name=name
        )
        out.append((who, accounts.issue_scan_token(who.account_id, "demo").token))
    return out


def identities(people: list[tuple[Principal, str]]) -> dict[str, str]:
    """Every string that names a person, and whose it is."""
    out = {}
    for who, _ in people:
        for value in (who.account_id, who.username, who.display_name):
            if value:
                out[value] = who.username
    return out


def leaks(text: str, names: dict[str, str]) -> list[str]:
    """The identities ``text`` holds, in any case; JSON is read first (``Bj\\u00f6rn``)."""
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), ensure_ascii=False)
    low = text.casefold()
    return [f"{value!r} ({whose})" for value, whose in names.items() if value.casefold() in low]


def a_run(world: World, ops: StoreOperations, people: list[tuple[Principal, str]]) -> None:
    """Three signed-in shoppers scan in with their app's token, shop, and leave."""
    for k, ((_, token), (x, y), plate) in enumerate(zip(people, STANDS, PLATES, strict=True)):
        t_in = 1.0 + 2 * k
        world.walk(
            f"trk-{k}",
            (t_in - 0.5, 1.8, 0.6),
            (t_in + 1.5, 1.8, y),
            (t_in + 3.0, x, y),
            (t_in + 12.0, x, y),
            (t_in + 14.0, 14.2, y),
            (t_in + 15.5, 14.2, 1.0),
            (t_in + 16.0, *EXIT_XY),
        )
        world.entry(t_in, token)
        unit = world.store.items[world.store.skus_on_plate(plate)[0].sku].unit_weight_g
        world.shelf(f"e{k}", plate, -unit, t_in + 5.0, t_in + 6.0)
        world.exit(t_in + 16.0, token)
    for t in range(1, 40):
        world.run(float(t))
        ops.tick(T0 + t)


@pytest.fixture
def run(make_world, store: Store):
    world = make_world()
    accounts = AccountBook(":memory:")
    ops = StoreOperations(store, world.transport, ":memory:", now=lambda: world.now_s)
    ops.start()
    ops.count_shelves(store.planogram, T0)
    people = shoppers(accounts)
    a_run(world, ops, people)
    yield world, ops, people
    ops.close()
    accounts.close()


def test_analytics_of_a_whole_run_name_no_shopper(run) -> None:
    world, ops, people = run
    receipts = world.brain.receipts
    assert len(receipts) == 3 and all(len(r.lines) == 1 for r in receipts)
    names = identities(people)
    report = ops.footfall.report()
    heat = ops.heat.window(T0, T0 + 60)
    outputs = {
        "footfall report": report.model_dump_json(),
        "heatmap grid": json.dumps(np.round(heat.person_s, 3).tolist()),
        "heatmap png": window_png(ops.heat, world.store, T0, T0 + 60).decode("latin-1"),
        "EPCIS export": json.dumps(ops.epcis(receipts, at_s=T0 + 60)),
        "metrics": prometheus_client.generate_latest().decode(),
        "operations counters": json.dumps(ops.stats()),
        "brain counters": json.dumps(world.brain.stats()),
        "stock": json.dumps([p.model_dump() for p in ops.inventory.piles()]),
    }
    # the run produced real analytics: entries counted, heat laid down, sales exported
    assert report.entries == 3 and float(heat.person_s.sum()) > 30.0
    assert outputs["EPCIS export"].count("retail_selling") == 3
    found = {what: leaks(text, names) for what, text in outputs.items()}
    assert all(not hits for hits in found.values()), found
    # ... while the visits stay linkable by their pseudonymous token and session id only
    sessions = {r.session_id for r in receipts}
    assert sessions == {session_id_for(token) for _, token in people}


def test_the_scan_finds_an_identity_where_there_is_one(run) -> None:
    """The check above is not blind: a planted identity is found."""
    _, _, people = run
    who, _ = people[1]
    planted = json.dumps({"entries": 3, "note": f"by {who.display_name.upper()}"})
    assert leaks(planted, identities(people)) == ["'Björn Karlsson' (bjorn_k)"]


def test_scan_tokens_are_random_not_derived_from_the_account(run) -> None:
    _, _, people = run
    for who, token in people:
        assert who.account_id not in token and who.username.split("@")[0] not in token
        assert re.fullmatch(r"[A-Za-z0-9._:@/-]{8,128}", token)


# --- track retention ---

MINUTES = 12  # of event time, at 5 Hz, three people walking without end


def send(
    world: World, batch_id: str, t: float, points: list[TrackPoint], ended: list[str] | None = None
) -> None:
    batch = TrackBatch(
        id=batch_id, event_time_s=t, device_id="positioning", tracks=points, ended=ended or []
    )
    publish(world.transport, "demo", batch)


def test_raw_track_history_is_bounded_in_time(make_world, store: Store) -> None:
    world = make_world()
    ops = StoreOperations(store, world.transport, ":memory:", now=lambda: world.now_s)
    ops.start()
    t = T0
    for k in range(MINUTES * 60 * 5):
        t = T0 + k / 5
        points = [
            TrackPoint(track_id=f"t{j}", x_m=2.0 + 10 * abs(np.sin(k / 300 + j)), y_m=2.0 + j)
            for j in range(3)
        ]
        send(world, f"b{k}", t, points)
        if k % 5 == 0:
            world.brain.tick(t)
            ops.tick(t)
    brain = world.brain.settings
    # the brain: positions of the last track_retention_s (+ its prune period), no more
    for tid in world.brain.tracks.track_ids():
        kept = world.brain.tracks.window(tid, 0.0, t)
        assert kept[0][0] >= t - brain.track_retention_s - 5.0
        assert len(kept) <= (brain.track_retention_s + 5.0) * 5 + 1
    # shrink rules: a short path per track, for case evidence
    memory_s = ops.shrink.rules.s.track_memory_s
    for path in ops.shrink.rules.paths.values():
        assert path[0][0] >= t - memory_s - 1e-6
    # footfall keeps a person's last point only; the heatmap keeps sums per cell and slice
    assert len(ops.footfall.counter._live) == 3
    held_s = ops.heat.slices * ops.heat.settings.slice_s
    assert held_s <= ops.heat.settings.retention_s + ops.heat.settings.slice_s
    assert ops.heat.shape == ops.heat.window(T0, t).person_s.shape  # cells, never tracks
    ops.close()


def test_footfall_and_heat_hold_no_track_after_it_ends(make_world, store: Store) -> None:
    world = make_world()
    ops = StoreOperations(store, world.transport, ":memory:", now=lambda: world.now_s)
    ops.start()
    for k in range(50):
        send(world, f"b{k}", T0 + k / 5, [TrackPoint(track_id="t1", x_m=5.0, y_m=3.0)])
    send(world, "end", T0 + 10.2, [], ended=["t1"])
    late = ops.footfall.counter.settings
    send(world, "later", T0 + 11.2 + max(late.stitch_window_s, late.lost_window_s), [])
    assert ops.footfall.counter._live == {} and ops.footfall.counter._pool == []
    ops.close()


def test_case_evidence_retention_runs_with_store_operations(store: Store, tmp_path: Path) -> None:
    ops = StoreOperations(
        store, LocalTransport(), ":memory:", now=lambda: T0, evidence_dir=tmp_path
    )
    ops.tick(T0)
    assert ops.retention.counts["evidence_items"] == 0 and ops.retention.evidence_dir == tmp_path
    assert ops.cases.evidence_dir == tmp_path
    ops.close()


def test_the_managers_analytics_over_the_api_name_no_shopper() -> None:
    """Shoppers use the app (visits, receipts, a dispute); the manager's pages and /metrics
    then hold no username or account id of theirs."""
    from fastapi.testclient import TestClient
    from store_api import PASSWORD, build_store_api

    api = build_store_api()
    try:
        people = {p.username: p for p in api.accounts.accounts() if p.role == "shopper"}
        names = {v: u for u, p in people.items() for v in (p.account_id, u)}
        for username in people:
            shopper = TestClient(api.app)
            shopper.headers["Authorization"] = f"Bearer {api.token(username)}"
            for path in ("/me/visits", "/me/receipts", "/me/cart"):
                assert shopper.get(path).status_code == 200, path
        receipt = api.ids["receipt_a"]
        shopper_a = TestClient(api.app)
        shopper_a.headers["Authorization"] = f"Bearer {api.token('shopper-a')}"
        disputed = shopper_a.post(
            f"/me/receipts/{receipt}/disputes", json={"sku": "SKU001", "reason": "not mine"}
        )
        assert disputed.status_code == 201, disputed.text
        issued = api.accounts.sign_in("manager", PASSWORD)
        assert issued is not None
        manager = TestClient(api.app)
        manager.headers["Authorization"] = f"Bearer {issued[0]}"
        pages = {
            path: manager.get(path)
            for path in (
                "/footfall",
                f"/heatmap.png?from_s={T0}&to_s={T0 + 600}",
                "/inventory",
                "/alerts",
                "/replenishment",
                "/metrics",
            )
        }
        assert all(r.status_code == 200 for r in pages.values()), {
            p: r.status_code for p, r in pages.items()
        }
        assert "/me/receipts/{receipt_id}/disputes" in pages["/metrics"].text  # it saw the calls
        found = {p: leaks(r.content.decode("latin-1"), names) for p, r in pages.items()}
        assert all(not hits for hits in found.values()), found
    finally:
        api.close()
