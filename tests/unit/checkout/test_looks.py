"""Who is at the shelf by look: enrolment, the weighing of looks, and the brain using them."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from checkout_world import T0

from checkout.looks import (
    Enrolment,
    identify,
    look_distance,
    mean_look,
    same_person_odds,
    whereabouts,
)
from checkout.sessions import session_id_for
from checkout.settings import BrainSettings

DIM = 32


def unit(k: int, jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    v = np.zeros(DIM)
    v[k] = 1.0
    v += np.random.default_rng(seed).normal(0.0, jitter, DIM)
    return v / np.linalg.norm(v)


def test_same_person_odds_fall_with_distance() -> None:
    odds = [same_person_odds(d) for d in np.linspace(0.0, 1.0, 21)]
    assert all(a > b for a, b in pairwise(odds))
    assert odds[2] > 10.0 and odds[10] < 1.0  # 0.1 apart: one person; 0.5 apart: two


def test_looks_of_two_models_are_never_alike() -> None:
    assert look_distance(unit(0), np.ones(26) / np.sqrt(26)) == 1.0
    assert mean_look([]) is None


def test_enrolment_takes_only_the_first_looks_after_the_scan_in() -> None:
    e = Enrolment("trk", entered_s=100.0)
    e.add(99.0, unit(0), most=3, window_s=10.0)  # before the scan-in
    e.add(101.0, unit(1), most=3, window_s=10.0)
    e.add(102.0, unit(1), most=3, window_s=10.0)
    assert e.vector(least=3) is None  # two looks are not enough yet
    e.add(120.0, unit(2), most=3, window_s=10.0)  # too late: the track may have slid
    e.add(103.0, unit(1), most=3, window_s=10.0)
    e.add(104.0, unit(2), most=3, window_s=10.0)  # one too many
    vector = e.vector(least=3)
    assert vector is not None and look_distance(vector, unit(1)) < 1e-9


def test_a_track_that_looks_like_another_visit_is_charged_to_that_visit() -> None:
    visits = {"s-a": (unit(0), 1.0), "s-b": (unit(1), 1.0), "s-c": (unit(2), 1.0)}
    found = identify(unit(1, 0.05), "s-a", visits, keep_prior=0.9)
    assert found.session_id == "s-b" and found.belief > 0.9
    assert found.names("s-a", min_belief=0.5, strong_odds=10.0)
    kept = identify(unit(0, 0.05), "s-a", visits, keep_prior=0.9)
    assert kept.session_id == "s-a" and not kept.names("s-a", 0.5, 10.0)


def test_a_look_that_fits_nobody_changes_nothing() -> None:
    visits = {"s-a": (unit(0), 1.0), "s-b": (unit(1), 1.0)}
    found = identify(unit(5), "s-a", visits, keep_prior=0.9)
    assert not found.names("s-a", min_belief=0.5, strong_odds=10.0)


def test_a_visit_nobody_could_enrol_is_named_only_when_the_track_clearly_is_not_its_own() -> None:
    # the track at the hand is bound to s-a, but looks nothing like s-a: s-b, whose look
    # was never learnt and whose own track is lost, is the likeliest one there
    visits = {"s-a": (unit(0), 1.0), "s-b": (None, 1.0), "s-c": (unit(2), 0.02)}
    found = identify(unit(7), "s-a", visits, keep_prior=0.9)
    assert found.session_id == "s-b" and found.odds is None
    assert found.names("s-a", min_belief=0.5, strong_odds=10.0)
    # ... but a look that still fits s-a a little is no evidence against it
    unsure = identify(mean_look([unit(0), unit(7)]), "s-a", visits, keep_prior=0.9)
    assert not unsure.names("s-a", min_belief=0.5, strong_odds=10.0)


def test_whereabouts_of_a_visit_from_its_own_track() -> None:
    a, b = unit(0), unit(1)
    accounted = whereabouts(a, a, [b], live=True)  # its track is on it, elsewhere
    slid = whereabouts(b, a, [b], live=True)  # its track carries somebody else
    lost = whereabouts(None, a, [b], live=False)
    unknown = whereabouts(None, a, [b], live=True)
    assert accounted < unknown < slid == lost


# --- in the brain ---


def _two_shoppers_swap(make_world, settings: BrainSettings):
    """Two shoppers walk in apart (their looks are learnt), then their tracks swap people.

    After 8 s track a follows shopper B and track b shopper A; B picks at g01-s1-p1
    (track a stands there), then track a walks out (with B) and track b (with A).
    """
    world = make_world(settings=settings)
    world.walk("trk-a", (0.5, 1.8, 0.6), (4.0, 3.0, 2.9), (14.0, 3.0, 2.9), (18.0, 14.2, 0.6))
    world.walk("trk-b", (3.5, 1.8, 0.6), (6.0, 6.0, 2.9), (14.0, 6.0, 2.9), (21.0, 14.2, 0.6))
    look_a, look_b = unit(0, 0.05, 1), unit(1, 0.05, 2)

    def look_of(first: np.ndarray, then: np.ndarray):
        def look(t: float) -> list[float] | None:
            if t < 2.0 or 7.0 <= t < 9.0 or t > 16.0:
                return None  # at the gate, or crowded while they swap
            return [round(float(v), 3) for v in (first if t < 8.0 else then)]

        return look

    world.looks = {"trk-a": look_of(look_a, look_b), "trk-b": look_of(look_b, look_a)}
    world.entry(1.0, "tok-a")
    world.entry(4.0, "tok-b")
    world.shelf("pick", "g01-s1-p1", -522.0, 11.0, 12.0)  # B's hand, track a's place
    world.exit(18.0)
    world.exit(21.0)
    world.run(27.0)
    return {
        r.session_id: ([(line.sku, line.quantity) for line in r.lines], r.exited_s - T0)
        for r in world.brain.receipts
    }


@pytest.mark.parametrize("rebind", [False, True])
def test_a_track_that_slid_onto_another_shopper_charges_the_shopper_it_looks_like(
    make_world, rebind: bool
) -> None:
    got = _two_shoppers_swap(make_world, BrainSettings(look_rebind=rebind))
    a, b = got[session_id_for("tok-a")], got[session_id_for("tok-b")]
    assert a[0] == [] and b[0] == [("SKU001", 1)]
    # moved by its look, track a's positions are B's visit's: the exit at 18 s is B's
    assert (a[1], b[1]) == ((21.0, 18.0) if rebind else (18.0, 21.0))


def test_without_looks_positions_decide(make_world) -> None:
    got = _two_shoppers_swap(make_world, BrainSettings(look_attribution=False))
    assert got[session_id_for("tok-a")] == ([("SKU001", 1)], 18.0)
    assert got[session_id_for("tok-b")] == ([], 21.0)


def test_an_exit_no_position_explains_closes_the_visit_the_walker_looks_like(make_world) -> None:
    """Track a slid onto somebody else, who stays; shopper A walks out on a track of nobody's."""
    world = make_world()
    world.walk("trk-a", (0.5, 1.8, 0.6), (4.0, 3.0, 2.9), (40.0, 3.0, 2.9))
    world.walk("trk-b", (3.5, 1.8, 0.6), (6.0, 6.0, 2.9), (40.0, 6.0, 2.9))
    world.walk("trk-x", (24.0, 12.0, 3.0), (28.0, 14.2, 0.6))
    look_a, look_b, look_c = unit(0, 0.05, 1), unit(1, 0.05, 2), unit(2, 0.05, 3)

    def look(early: np.ndarray, late: np.ndarray):
        return lambda t: (
            None if t < 2.0 else [round(float(v), 3) for v in (early if t < 15 else late)]
        )

    world.looks = {
        "trk-a": look(look_a, look_c),  # from 15 s on, track a follows a shopper nobody enrolled
        "trk-b": look(look_b, look_b),
        "trk-x": look(look_a, look_a),
    }
    world.entry(1.0, "tok-a")
    world.entry(4.0, "tok-b")
    world.exit(28.0)
    world.run(31.0)
    (receipt,) = world.brain.receipts
    assert receipt.session_id == session_id_for("tok-a") and receipt.needs_review
    assert any("at the gate looks like" in r for r in receipt.review_reasons)
    assert world.brain.stats()["exits_named_by_look"] == 1


def test_without_looks_that_exit_closes_nobody(make_world) -> None:
    world = make_world(settings=BrainSettings(look_attribution=False))
    world.walk("trk-a", (0.5, 1.8, 0.6), (4.0, 3.0, 2.9), (40.0, 3.0, 2.9))
    world.walk("trk-x", (24.0, 12.0, 3.0), (28.0, 14.2, 0.6))
    world.entry(1.0, "tok-a")
    world.exit(28.0)
    world.run(31.0)
    assert world.brain.receipts == [] and world.brain.stats()["unmatched_exits"] == 1
