"""The brain under device faults: visits at a faulty device are flagged, never silently wrong.

A ``device_health`` alert (as ``checkout.device_alerts`` raises it) names the
device, the fault and when it began; the brain flags the visits that stood
where the fault bites while it lasted. A shelf camera that is down does not
stop weight-only attribution, and flags a visit only when that is ambiguous.
"""

from __future__ import annotations

from checkout_world import EXIT_XY, T0, World

from checkout.sessions import session_id_for
from iot.payloads import Alert, DeviceStatus

AT_G01 = (3.0, 3.0)  # within reach of g01-s1-p1 (shelf-g01's gondola)
AT_G03 = (3.0, 5.0)  # g03's aisle: 1.5 m from g01, out of reach
FAR = (12.0, 7.0)  # at g06, across the store


def visit(world: World, token: str, stand: tuple[float, float], t_in: float, t_out: float) -> None:
    """Scan in at ``t_in``, stand at ``stand`` from ``t_in + 3`` to ``t_out - 3``, then leave
    along the stand's aisle and down the east wall (walking past g01 only on the way in)."""
    x, y = stand
    world.walk(
        f"trk-{token}",
        (t_in - 0.5, 1.8, 0.6),
        (t_in + 1.5, 1.8, y),
        (t_in + 3.0, x, y),
        (t_out - 3.0, x, y),
        (t_out - 2.0, 14.2, y),
        (t_out - 0.5, 14.2, 1.0),
        (t_out, *EXIT_XY),
    )
    world.entry(t_in, token)
    world.exit(t_out, token)


def alert(
    world: World,
    at_s: float,
    state: str,
    subject: str,
    *,
    fault: str = "stale",
    since_s: float | None = None,
    plate: str | None = None,
    alert_id: str = "device.a1",
) -> None:
    world.at(
        at_s,
        Alert(
            id=f"{state}.{alert_id}",
            event_time_s=T0 + at_s,
            device_id="devices",
            alert_id=alert_id,
            kind="device_health",
            state="raised" if state == "raised" else "cleared",
            plate_id=plate,
            subject_id=subject,
            fault=fault,  # type: ignore[arg-type]
            since_s=T0 + (since_s if since_s is not None else at_s),
        ),
    )


def reasons(world: World, token: str) -> list[str]:
    [receipt] = [r for r in world.brain.receipts if r.token == token]
    return [r for r in receipt.review_reasons if "device alert" in r]


def test_a_dead_shelf_controller_flags_the_visits_at_its_gondola_only(make_world) -> None:
    world = make_world()
    visit(world, "tok-a", AT_G01, 1.0, 30.0)
    visit(world, "tok-b", AT_G03, 1.5, 30.5)
    visit(world, "tok-c", FAR, 2.0, 31.0)
    visit(world, "tok-d", AT_G03, 8.0, 31.5)  # walks past g01's corner during the fault
    # shelf-g01 fell silent at 6 s; the health service noticed 5 s later
    alert(world, 11.0, "raised", "shelf-g01", since_s=6.0)
    world.run(40.0)
    [why] = reasons(world, "tok-a")
    assert "shelf controller shelf-g01 on gondola g01" in why and "(stale)" in why
    assert reasons(world, "tok-b") == reasons(world, "tok-c") == reasons(world, "tok-d") == []
    [receipt_a] = [r for r in world.brain.receipts if r.token == "tok-a"]
    assert receipt_a.needs_review and receipt_a.lines == []  # nothing invented, nothing hidden
    assert world.brain.stats()["visits_flagged_device_fault"] == 1


def test_a_faulty_load_cell_flags_visits_at_its_plate_from_when_the_fault_began(
    make_world,
) -> None:
    world = make_world()
    visit(world, "tok-a", AT_G01, 1.0, 12.0)  # at the plate 4-9 s, gone before the alert
    visit(world, "tok-b", AT_G03, 1.5, 12.5)
    alert(world, 10.5, "raised", "shelf-g01", fault="stuck", since_s=5.0, plate="g01-s1-p1")
    world.run(20.0)
    [why] = reasons(world, "tok-a")
    assert "load cell of plate g01-s1-p1 (shelf controller shelf-g01" in why and "stuck" in why
    assert reasons(world, "tok-b") == []


def test_a_visit_after_the_fault_cleared_is_not_flagged(make_world) -> None:
    world = make_world()
    alert(world, 3.0, "raised", "shelf-g01", since_s=2.0)
    alert(world, 8.0, "cleared", "shelf-g01", since_s=2.0)
    visit(world, "tok-late", AT_G01, 10.0, 25.0)
    world.run(30.0)
    assert reasons(world, "tok-late") == []
    assert world.brain.faults.episodes() == []  # reviewed to its end, then forgotten


def test_a_silent_tracker_flags_every_visit_in_the_store(make_world) -> None:
    world = make_world()
    visit(world, "tok-a", AT_G01, 1.0, 20.0)
    visit(world, "tok-c", FAR, 2.0, 21.0)
    visit(world, "tok-after", FAR, 40.0, 55.0)  # came in after the tracker was back
    alert(world, 10.0, "raised", "positioning", since_s=5.0, alert_id="device.t1")
    alert(world, 30.0, "cleared", "positioning", since_s=5.0, alert_id="device.t1")
    world.run(60.0)
    for token in ("tok-a", "tok-c"):
        [why] = reasons(world, token)
        assert "shopper tracker positioning" in why and "in the store" in why
    assert reasons(world, "tok-after") == []


def test_an_alert_after_the_receipt_is_kept_on_the_visit_and_counted(make_world) -> None:
    world = make_world()
    visit(world, "tok-a", AT_G01, 1.0, 12.0)
    alert(world, 20.0, "raised", "shelf-g01", since_s=5.0)  # a will that came very late
    world.run(25.0)
    assert reasons(world, "tok-a") == []  # the receipt went out before anyone knew
    record = world.brain.ledger.session(session_id_for("tok-a"))
    assert record is not None and any("shelf-g01" in r for r in record.review_reasons)
    assert world.brain.stats()["visits_flagged_device_fault_after_receipt"] == 1


def test_redelivered_and_unrelated_alerts_change_nothing(make_world) -> None:
    world = make_world()
    visit(world, "tok-a", AT_G01, 1.0, 20.0)
    alert(world, 8.0, "raised", "shelf-g01", since_s=6.0)
    alert(world, 8.5, "raised", "shelf-g01", since_s=6.0, alert_id="device.a1")  # same episode
    alert(world, 9.0, "raised", "rfid-exit", fault="offline", alert_id="device.r1")  # no cart
    alert(world, 9.5, "raised", "cam-shelf-g01", fault="offline", alert_id="device.c1")
    world.run(30.0)
    assert len(reasons(world, "tok-a")) == 1


def test_with_its_shelf_camera_down_weight_alone_still_fills_the_cart(make_world) -> None:
    world = make_world()
    visit(world, "tok-a", AT_G01, 1.0, 20.0)
    world.at(
        2.0,
        DeviceStatus(
            id="cam.s1", event_time_s=T0 + 2.0, device_id="cam-shelf-g01", state="offline"
        ),
    )
    world.shelf("e1", "g01-s1-p1", -1044.0, 8.0, 9.0)  # two bottles, one shopper there
    world.run(25.0)
    [receipt] = world.brain.receipts
    assert [(line.sku, line.quantity) for line in receipt.lines] == [("SKU001", 2)]
    assert not receipt.needs_review, receipt.review_reasons
    assert world.brain.stats()["events_camera_down"] == 1


def test_with_its_shelf_camera_down_an_ambiguous_act_is_flagged(make_world) -> None:
    world = make_world()
    visit(world, "tok-a", AT_G01, 1.0, 20.0)
    visit(world, "tok-b", (3.3, 3.0), 1.2, 20.5)  # side by side at the same plate
    world.at(
        2.0,
        DeviceStatus(
            id="cam.s1", event_time_s=T0 + 2.0, device_id="cam-shelf-g01", state="offline"
        ),
    )
    world.shelf("e1", "g01-s1-p1", -522.0, 8.0, 9.0)
    world.run(25.0)
    flagged = [
        r for r in world.brain.receipts if any("cam-shelf-g01" in x for x in r.review_reasons)
    ]
    assert len(flagged) >= 1
    assert all(r.needs_review for r in flagged)
    assert world.brain.stats()["events_camera_down_ambiguous"] == 1
