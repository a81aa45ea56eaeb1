"""Fusion: who took it (attribution) and what it was (interpretation). Pure functions.

Attribution turns track positions around a shelf event into a shopper and a
confidence; interpretation turns the settled weight change into a cart line,
reading puts against the attributed shopper's own cart (a put can only return
what that shopper holds) and remembering foreign units left on a plate.

>>> attribute({"s-a": 0.4}, reach_m=0.9).session_id
's-a'
>>> attribute({"s-a": 0.4, "s-b": 0.5}, reach_m=0.9).confidence < 0.9
True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from checkout.settings import BrainSettings
from iot.store import CatalogItem

__all__ = [
    "Attribution",
    "Fit",
    "Interpretation",
    "attribute",
    "fit",
    "interpret_pick",
    "interpret_put",
    "line_confidence",
    "mean_distance_m",
    "reach_score_m",
    "speed_m_s",
    "weight_confidence",
]


# --- attribution ---


@dataclass(frozen=True)
class Attribution:
    """Who a shelf event is attributed to; ``session_id`` None means nobody in reach."""

    session_id: str | None
    confidence: float
    distance_m: float | None = None
    runner_up_m: float | None = None
    reason: str = ""
    runner_up_id: str | None = None  # the other session in reach, if any


def mean_distance_m(distances_m: Iterable[float]) -> float | None:
    """Time-averaged distance of a track to a plate front over the event window.

    Averaging per-sample distances rather than taking the distance of the
    mean position matters for a shopper walking past: their mean position can
    sit right in front of the plate although they never stopped there, while
    their average distance cannot.
    """
    values = list(distances_m)
    return sum(values) / len(values) if values else None


def speed_m_s(samples: list[tuple[float, float, float]]) -> float:
    """Net speed over a window of ``(t, x, y)`` samples, robust to position noise.

    Compares the mean of the first and last thirds instead of summing steps,
    which position noise would inflate for a shopper standing still.
    """
    if len(samples) < 3:
        return 0.0
    k = max(1, len(samples) // 3)
    head, tail = samples[:k], samples[-k:]
    dt = sum(s[0] for s in tail) / k - sum(s[0] for s in head) / k
    if dt <= 0:
        return 0.0
    dx = sum(s[1] for s in tail) / k - sum(s[1] for s in head) / k
    dy = sum(s[2] for s in tail) / k - sum(s[2] for s in head) / k
    return math.hypot(dx, dy) / dt


def reach_score_m(mean_distance: float, speed: float, walking_penalty_s: float) -> float:
    """Distance-like score: lower is likelier to be the one reaching into the plate.

    A hand stays in a shelf for a second or more, so the shopper reaching
    stands still; one walking past at 1 m/s is moved ``walking_penalty_s``
    metres further away in the comparison.

    >>> reach_score_m(0.45, 0.05, 0.6) < reach_score_m(0.40, 1.0, 0.6)
    True
    """
    return mean_distance + walking_penalty_s * speed


def attribute(
    distances_m: Mapping[str, float],
    *,
    reach_m: float,
    margin_m: float = 0.15,
    sure_margin_m: float = 0.25,
    single_confidence: float = 0.97,
    rivals_m: Iterable[float] = (),
) -> Attribution:
    """Pick the session whose track was nearest the plate, with a confidence.

    ``distances_m``: session id -> time-averaged distance to the plate front.
    ``rivals_m``: distances of people who cannot be charged (tracks bound to no
    session); they never win, but one nearer than the winner lowers confidence.
    """
    limit = reach_m + margin_m
    inside = sorted((d, s) for s, d in distances_m.items() if d <= limit)
    if not inside:
        nearest = min(distances_m.values(), default=None)
        where = f"nearest shopper {nearest:.2f} m" if nearest is not None else "no shopper tracked"
        return Attribution(None, 0.0, nearest, None, f"nobody within {limit:.2f} m ({where})")
    best_d, best = inside[0]
    others = [d for d, _ in inside[1:]] + [d for d in rivals_m if d <= limit]
    if not others:
        return Attribution(
            best, single_confidence, best_d, None, f"only shopper in reach ({best_d:.2f} m)"
        )
    runner_up = min(others)
    lead = runner_up - best_d
    confidence = 0.5 + 0.45 * max(-1.0, min(1.0, lead / sure_margin_m))
    confidence = min(single_confidence, max(0.05, confidence))
    return Attribution(
        best,
        confidence,
        best_d,
        runner_up,
        f"nearest of {len(others) + 1} in reach ({best_d:.2f} m, next {runner_up:.2f} m)",
        inside[1][1] if len(inside) > 1 else None,
    )


# --- weight fits ---


@dataclass(frozen=True, order=True)
class Fit:
    """``count`` units of ``sku`` explaining a weight change, ``z`` sigmas off."""

    z: float
    sku: str
    count: int
    foreign: bool = False


def fit(
    item: CatalogItem,
    weight_g: float,
    noise_g: float,
    settings: BrainSettings,
    max_count: int = 1000,
) -> Fit | None:
    """The whole number of ``item`` units (1..max_count) closest to ``weight_g``.

    None if ``max_count`` < 1 (nothing of it could be involved).
    """
    if max_count < 1:
        return None
    count = max(1, min(max_count, round(weight_g / item.unit_weight_g)))
    sigma = math.sqrt(
        count * item.weight_tolerance_g**2 + noise_g**2 + settings.weight_floor_sigma_g**2
    )
    return Fit(abs(weight_g - count * item.unit_weight_g) / sigma, item.sku, count)


def weight_confidence(z: float, settings: BrainSettings) -> float:
    """1-ish inside ``fit_ok_z``, falling to 0.5 at ``fit_max_z``, 0.25 beyond."""
    if z <= settings.fit_ok_z:
        return 0.98
    if z <= settings.fit_max_z:
        span = settings.fit_max_z - settings.fit_ok_z
        return 0.98 - 0.48 * (z - settings.fit_ok_z) / span
    return 0.25


def line_confidence(weight: float, attribution: float, sku: float) -> float:
    """A cart line is only as sure as its weakest piece of evidence."""
    return min(weight, attribution, sku)


# --- interpretation ---


@dataclass(frozen=True)
class Interpretation:
    """What a shelf event means for the attributed cart.

    ``sku`` None: the event explains nothing (no cart change; the visit is flagged).
    ``quantity_delta``: + into the cart (pick), - out of it (put).
    ``plate_foreign_delta``: change to the foreign units lying on the plate.
    """

    sku: str | None
    quantity_delta: int
    weight_confidence: float
    sku_confidence: float
    reason: str
    plate_foreign_delta: dict[str, int] = field(default_factory=dict)


def interpret_pick(
    weight_g: float,
    noise_g: float,
    *,
    own: CatalogItem | None,
    foreign_on_plate: Mapping[str, int],
    items: Mapping[str, CatalogItem],
    settings: BrainSettings,
) -> Interpretation:
    """A pick takes the plate's own SKU unless a foreign unit on it fits clearly better.

    "Clearly" is a likelihood ratio against the prior odds ``foreign_prior``:
    a stray unit is rarer than the plate's own stock, so a slightly better fit
    alone does not make a pick a stray.
    """
    own_fit = fit(own, weight_g, noise_g, settings) if own else None
    if own_fit is not None and own is not None and weight_g < 0.5 * own.unit_weight_g:
        own_fit = None  # less than half a unit: nothing of the own SKU was taken
    foreign_fits = [
        f
        for sku, n in sorted(foreign_on_plate.items())
        if sku in items
        and (f := fit(items[sku], weight_g, noise_g, settings, n)) is not None
        and f.z <= settings.fit_max_z
    ]
    best_foreign = min(foreign_fits, default=None)
    if best_foreign is not None and (
        own_fit is None
        or (own_fit.z**2 - best_foreign.z**2) / 2 + math.log(settings.foreign_prior) > 0
    ):
        sku_conf = (
            _posteriors([(settings.foreign_prior, best_foreign.z), (1.0, own_fit.z)])[0]
            if own_fit is not None
            else 1.0
        )
        return Interpretation(
            best_foreign.sku,
            best_foreign.count,
            weight_confidence(best_foreign.z, settings),
            sku_conf,
            f"pick of {weight_g:.0f} g fits {best_foreign.count} x foreign {best_foreign.sku} "
            f"(z {best_foreign.z:.1f}) left on the plate",
            {best_foreign.sku: -best_foreign.count},
        )
    if own_fit is None:
        return Interpretation(
            None, 0, 0.0, 0.0, f"pick of {weight_g:.0f} g fits no unit on the plate"
        )
    sku_conf = 1.0
    if best_foreign is not None:
        sku_conf = _posteriors([(1.0, own_fit.z), (settings.foreign_prior, best_foreign.z)])[0]
    return Interpretation(
        own_fit.sku,
        own_fit.count,
        weight_confidence(own_fit.z, settings),
        sku_conf,
        f"pick of {weight_g:.0f} g fits {own_fit.count} x {own_fit.sku} (z {own_fit.z:.1f})",
    )


def interpret_put(
    weight_g: float,
    noise_g: float,
    *,
    own_sku: str | None,
    cart: Mapping[str, int],
    items: Mapping[str, CatalogItem],
    settings: BrainSettings,
    picked_unit_weights_g: Mapping[str, Sequence[float]] | None = None,
) -> Interpretation:
    """A put returns units the shopper holds: the likeliest (SKU, count) in their cart.

    Each candidate's weight fit is weighed by a prior: the units of it the
    shopper holds, times ``wrong_plate_prior`` unless it is the plate's own
    SKU (most put-backs go where the item came from). The SKU confidence is
    the chosen candidate's posterior, so two near-equal weights in one cart
    come out unsure and the visit is reviewed rather than guessed.

    ``picked_unit_weights_g``: per SKU, the unit weights the shelves measured
    when this shopper picked it. A unit put back weighs what it weighed when
    taken, which tells apart SKUs whose catalog weights are nearly equal.
    """
    fits = sorted(
        f
        for sku, n in cart.items()
        if n > 0
        and sku in items
        and (f := fit(items[sku], weight_g, noise_g, settings, n)) is not None
        and f.z <= settings.fit_max_z
    )
    if not fits:
        held = ", ".join(f"{n} x {s}" for s, n in sorted(cart.items()) if n > 0) or "nothing"
        return Interpretation(
            None, 0, 0.0, 0.0, f"put of {weight_g:.0f} g fits nothing in the cart (holds {held})"
        )

    def prior(f: Fit) -> float:
        return cart[f.sku] * (1.0 if f.sku == own_sku else settings.wrong_plate_prior)

    picked = picked_unit_weights_g or {}
    posteriors = _normalise(
        [
            prior(f)
            * _put_likelihood(
                f,
                items[f.sku],
                weight_g,
                noise_g,
                picked_g=picked.get(f.sku, ()),
                settings=settings,
            )
            for f in fits
        ]
    )
    best = max(range(len(fits)), key=lambda i: (posteriors[i], -fits[i].z))
    chosen, sku_conf = fits[best], posteriors[best]
    wrong_plate = chosen.sku != own_sku
    reason = f"put of {weight_g:.0f} g fits {chosen.count} x {chosen.sku} (z {chosen.z:.1f})"
    if sku_conf < 0.95:
        reason += f", {sku_conf:.0%} likely among near-equal fits"
    if wrong_plate:
        reason += f"; left on a plate stocking {own_sku}"
    return Interpretation(
        chosen.sku,
        -chosen.count,
        weight_confidence(chosen.z, settings),
        sku_conf,
        reason,
        {chosen.sku: chosen.count} if wrong_plate else {},
    )


def _put_likelihood(
    f: Fit,
    item: CatalogItem,
    weight_g: float,
    noise_g: float,
    *,
    picked_g: Sequence[float],
    settings: BrainSettings,
) -> float:
    """Density of the put's weight under this candidate: the catalog's spread of units, or,
    when it is sharper, the spread around a unit weight measured at this shopper's pick."""
    floor2 = noise_g**2 + settings.weight_floor_sigma_g**2
    sigma = math.sqrt(f.count * item.weight_tolerance_g**2 + floor2)
    density = _gauss(f.z) / sigma
    measured_sigma = math.sqrt(2 * floor2 * f.count)  # both weighings carry the noise
    for unit_g in picked_g:
        z = abs(weight_g - f.count * unit_g) / measured_sigma
        density = max(density, _gauss(z) / measured_sigma)
    return density


def _gauss(z: float) -> float:
    return math.exp(-0.5 * min(z * z, 1400.0))


def _normalise(weights: list[float]) -> list[float]:
    total = sum(weights)
    if total <= 0:
        return [1.0 / len(weights)] * len(weights)
    return [w / total for w in weights]


def _posteriors(candidates: list[tuple[float, float]]) -> list[float]:
    """Normalised prior x Gaussian likelihood for (prior, z) pairs."""
    best_z2 = min(z * z for _, z in candidates)
    # Subtract the best z^2 before exponentiating so no term underflows to zero.
    raw = [p * math.exp(-0.5 * (z * z - best_z2)) for p, z in candidates]
    total = sum(raw)
    return [r / total for r in raw]
