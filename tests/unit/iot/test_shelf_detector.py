"""Change detection on synthetic load-cell signals (the generator lives here, not in sim)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from iot.shelf import DetectorSettings, PlateChange, PlateChangeDetector, read_quantity

T0 = 1.8e9


@dataclass(frozen=True)
class Reach:
    start_s: float
    delta_g: float  # net change the reach leaves behind
    press_g: float = 300.0  # extra load of the hand while it is on the plate
    press_s: float = 1.5
    jitter_g: float = 15.0
    wobble_g: float = 25.0


@dataclass(frozen=True)
class Scenario:
    duration_s: float
    reaches: list[Reach] = field(default_factory=list)
    noise_g: float = 2.0
    drift_g_per_h: float = 0.0
    crosstalk_g: float = 0.0  # amplitude of neighbour bumps, g
    rate_hz: float = 20.0
    base_g: float = 6000.0


def make_signal(sc: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Times and weights of one plate: level + drift + noise + reaches + crosstalk."""
    n = int(sc.duration_s * sc.rate_hz)
    t = np.arange(n) / sc.rate_hz
    w = sc.base_g + sc.drift_g_per_h * t / 3600.0 + rng.normal(0.0, sc.noise_g, n)
    for r in sc.reaches:
        on = (t >= r.start_s) & (t < r.start_s + r.press_s)
        u = (t[on] - r.start_s) / r.press_s
        w[on] += r.press_g * np.sin(np.pi * u) ** 0.5 + rng.normal(0.0, r.jitter_g, on.sum())
        # The item leaves (or lands) in the middle of the press.
        w[t >= r.start_s + 0.5 * r.press_s] += r.delta_g
        after = t >= r.start_s + r.press_s
        ta = t[after] - (r.start_s + r.press_s)
        w[after] += r.wobble_g * np.exp(-ta / 0.12) * np.sin(2 * np.pi * 4.0 * ta)
    if sc.crosstalk_g:
        # Neighbour reaches every ~7 s: slow half-sine bumps of a few grams.
        for start in np.arange(3.0, sc.duration_s - 3.0, 7.0):
            on = (t >= start) & (t < start + 2.0)
            w[on] += sc.crosstalk_g * np.sin(np.pi * (t[on] - start) / 2.0)
    return T0 + t, w


def run(sc: Scenario, unit_g: float, seed: int) -> list[PlateChange]:
    rng = np.random.default_rng(seed)
    t, w = make_signal(sc, rng)
    det = PlateChangeDetector(noise_g=sc.noise_g, min_change_g=0.4 * unit_g)
    return [c for c in (det.update(float(ti), float(wi)) for ti, wi in zip(t, w, strict=True)) if c]


UNIT = 350.0  # a cola can
TOL = 2.0

CASES = [
    # id, scenario, unit weight, expected event counts, expected (action, quantity) of the net
    ("pick-1", Scenario(12, [Reach(4, -UNIT)]), UNIT, {1}, ("pick", 1)),
    ("pick-3", Scenario(12, [Reach(4, -3 * UNIT)]), UNIT, {1}, ("pick", 3)),
    ("put-back", Scenario(12, [Reach(4, +UNIT)]), UNIT, {1}, ("put", 1)),
    ("touch", Scenario(12, [Reach(4, 0.0, press_g=500)]), UNIT, {0}, None),
    ("drift-1h", Scenario(3600, drift_g_per_h=20.0), UNIT, {0}, None),
    ("noise-only", Scenario(600, noise_g=2.0), 58.0, {0}, None),
    (
        "heavy-transient",
        Scenario(14, [Reach(4, -58.0, press_g=800, press_s=2.5, jitter_g=40, wobble_g=80)]),
        58.0,
        {1},
        ("pick", 1),
    ),
    ("crosstalk", Scenario(120, crosstalk_g=5.0), 58.0, {0}, None),
    (
        "two-quick-picks",
        Scenario(14, [Reach(4, -UNIT), Reach(5.6, -UNIT)]),
        UNIT,
        {1, 2},
        ("pick", 2),
    ),
    (
        "drift-then-pick",
        Scenario(1800, [Reach(1700, -UNIT)], drift_g_per_h=20.0),
        UNIT,
        {1},
        ("pick", 1),
    ),
]


@pytest.mark.parametrize(
    ("scenario", "unit_g", "counts", "net"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_detector_table(
    scenario: Scenario, unit_g: float, counts: set[int], net: tuple[str, int] | None, seed: int
) -> None:
    changes = run(scenario, unit_g, seed)
    assert len(changes) in counts, changes
    if net is None:
        return
    action, quantity = net
    total = sum(c.delta_g for c in changes)
    true_total = sum(r.delta_g for r in scenario.reaches)
    # Settled level is a mean of ~9 samples (plus the wobble tail) against a long baseline.
    assert abs(total - true_total) < 5.0, (total, true_total)
    for c in changes:
        assert ("pick" if c.delta_g < 0 else "put") == action
        assert c.started_s <= c.settled_s
        assert 0.5 < c.noise_g < 4.0  # the measured noise tracks the true 2 g
    q = sum(
        read_quantity(c.delta_g, unit_weight_g=unit_g, tolerance_g=TOL, noise_g=c.noise_g)[0]
        for c in changes
    )
    assert q == quantity


def test_emitted_soon_after_the_hand_leaves() -> None:
    """Exit-to-receipt latency is measured: emit within ~settle_s plus the wobble."""
    reach = Reach(4, -UNIT, press_s=1.5)
    (change,) = run(Scenario(12, [reach]), UNIT, seed=7)
    hand_off = T0 + reach.start_s + reach.press_s
    assert change.settled_s - hand_off < DetectorSettings().settle_s + 0.6
    assert abs(change.started_s - (T0 + reach.start_s)) < 0.3


def test_confidence_lower_between_whole_numbers() -> None:
    exact = read_quantity(-350.0, unit_weight_g=350.0, tolerance_g=2.0, noise_g=2.0)
    half = read_quantity(-525.0, unit_weight_g=350.0, tolerance_g=2.0, noise_g=2.0)
    near_half = read_quantity(-20.0 * 1.5, unit_weight_g=20.0, tolerance_g=1.0, noise_g=1.0)
    assert exact[0] == 1 and exact[1] > 0.9
    assert half[1] < 0.1
    assert near_half[1] < 0.6  # posterior between 1 and 2 units is about a half
    # End to end: a change of 1.5 units through the detector reads with low confidence.
    (change,) = run(Scenario(12, [Reach(4, -1.5 * UNIT)]), UNIT, seed=3)
    _, conf = read_quantity(
        change.delta_g, unit_weight_g=UNIT, tolerance_g=TOL, noise_g=change.noise_g
    )
    assert conf < 0.1


def test_confidence_drops_with_misfit() -> None:
    confs = [
        read_quantity(-(350.0 + e), unit_weight_g=350.0, tolerance_g=2.0, noise_g=2.0)[1]
        for e in (0.0, 3.0, 8.0, 20.0)
    ]
    assert confs == sorted(confs, reverse=True)
    assert confs[0] > 0.95 and confs[-1] < 0.05


@pytest.mark.parametrize(
    ("delta", "unit", "expected"),
    [
        (-58.0, 58.0, 1),
        (-116.5, 58.0, 2),
        (1044.0, 522.0, 2),
        (-10.0, 58.0, 1),
        (-3 * 1065.0, 1065.0, 3),
    ],
)
def test_quantity_is_nearest_whole_number(delta: float, unit: float, expected: int) -> None:
    assert read_quantity(delta, unit_weight_g=unit, tolerance_g=2.0, noise_g=2.0)[0] == expected


def test_small_change_is_absorbed_not_emitted() -> None:
    # 15 g on a 58 g SKU is below 0.4 unit: no event, but the baseline moves to the new level.
    det = PlateChangeDetector(noise_g=0.5, min_change_g=0.4 * 58.0)
    t = T0 + np.arange(200) / 20
    w = np.r_[np.full(60, 1000.0), np.full(140, 1015.0)]
    assert [c for c in map(det.update, t.tolist(), w.tolist()) if c] == []
    assert det.baseline_g == pytest.approx(1015.0, abs=0.5)


def test_interrupt_measures_change_across_a_hole() -> None:
    det = PlateChangeDetector(noise_g=0.5)
    for k in range(40):
        det.update(T0 + k / 20, 2000.0)
    det.interrupt()  # samples lost; the item left during the hole
    out = [det.update(T0 + 5 + k / 20, 1650.0) for k in range(20)]
    changes = [c for c in out if c]
    assert len(changes) == 1 and changes[0].delta_g == pytest.approx(-350.0)


@pytest.mark.parametrize(
    ("t", "w", "match"),
    [
        (T0 - 1, 1.0, "not after"),
        (T0 + 1, float("nan"), "not finite"),
    ],
)
def test_bad_samples_raise(t: float, w: float, match: str) -> None:
    det = PlateChangeDetector()
    det.update(T0, 100.0)
    with pytest.raises(ValueError, match=match):
        det.update(t, w)


def test_settings_forbid_unknown_fields() -> None:
    with pytest.raises(ValueError, match="settle_secs"):
        DetectorSettings(settle_secs=1.0)  # type: ignore[call-arg]


@pytest.mark.parametrize("batch", [1, 2, 5, 20])
def test_feed_in_batches_matches_sample_by_sample(batch: int) -> None:
    sc = Scenario(20, [Reach(4, -UNIT), Reach(12, 2 * UNIT, press_g=600)])
    t, w = make_signal(sc, np.random.default_rng(11))
    one = PlateChangeDetector(noise_g=2.0, min_change_g=0.4 * UNIT)
    many = PlateChangeDetector(noise_g=2.0, min_change_g=0.4 * UNIT)
    expected = [c for c in map(one.update, t.tolist(), w.tolist()) if c]
    got: list[PlateChange] = []
    for k in range(0, len(w), batch):
        got += many.feed(float(t[k]), 1 / sc.rate_hz, w[k : k + batch].tolist())
    assert len(got) == len(expected) == 2
    for g, e in zip(got, expected, strict=True):
        assert g.settled_s == pytest.approx(e.settled_s)
        assert g.delta_g == pytest.approx(e.delta_g, abs=0.05)


@pytest.mark.parametrize("delta_g", [-770.0, 119.0, 1.4 * 512, 2.6 * 512, 30_000.0])
def test_read_quantity_never_overflows_on_odd_weights(delta_g: float) -> None:
    # A regression: a wide unit tolerance once made a neighbour's likelihood overflow.
    for tolerance_g in (0.5, 2.5, 40.0, 200.0):
        k, confidence = read_quantity(
            delta_g, unit_weight_g=512.0, tolerance_g=tolerance_g, noise_g=2.0
        )
        assert k >= 1 and 0.0 <= confidence <= 1.0
