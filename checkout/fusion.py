"""Fusion: who took it (attribution) and what it was (interpretation). Pure functions.

Attribution turns track positions around a shelf event into a shopper and a
confidence; interpretation turns the settled weight change into a cart line,
reading puts against the attributed shopper's own cart (a put can only return
what that shopper holds) and remembering foreign units left on a plate.

A plate may stock several SKUs ("home" SKUs, e.g. flavours of one yogurt).
A pick then weighs every home SKU, its prior split by facings, against the
foreign units on the plate. Where the weight cannot tell the chosen SKU from
another home SKU (equal unit weights), the likeliest one is charged but its
confidence is capped below ``review_below``: the visit is reviewed, never
silently guessed.

>>> attribute({"s-a": 0.4}, reach_m=0.9).session_id
's-a'
>>> attribute({"s-a": 0.4, "s-b": 0.5}, reach_m=0.9).confidence < 0.9
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from checkout.settings import BrainSettings
from iot.store import CatalogItem

__all__ = [
    "Attribution",
    "Fit",
    "Interpretation",
    "Seen",
    "attribute",
    "fit",
    "interpret_pick",
    "interpret_put",
    "line_confidence",
    "mean_distance_m",
    "reach_score_m",
    "seen_likelihood",
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
        # someone just beyond reach, barely further than the only one in it, could
        # as well have acted (positions are a few decimetres uncertain): not sure
        beyond = [d for s, d in distances_m.items() if s != best] + list(rivals_m)
        near_miss = min(beyond, default=math.inf)
        confidence = single_confidence
        if near_miss - best_d < sure_margin_m:
            confidence = _lead_confidence(near_miss - best_d, sure_margin_m, single_confidence)
        return Attribution(
            best, confidence, best_d, None, f"only shopper in reach ({best_d:.2f} m)"
        )
    runner_up = min(others)
    return Attribution(
        best,
        _lead_confidence(runner_up - best_d, sure_margin_m, single_confidence),
        best_d,
        runner_up,
        f"nearest of {len(others) + 1} in reach ({best_d:.2f} m, next {runner_up:.2f} m)",
        inside[1][1] if len(inside) > 1 else None,
    )


def _lead_confidence(lead_m: float, sure_margin_m: float, single_confidence: float) -> float:
    """0.5 for a tie, rising to 0.95 at a lead of ``sure_margin_m`` (never above single)."""
    confidence = 0.5 + 0.45 * max(-1.0, min(1.0, lead_m / sure_margin_m))
    return min(single_confidence, max(0.05, confidence))


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
    home: Mapping[str, float],
    foreign_on_plate: Mapping[str, int],
    items: Mapping[str, CatalogItem],
    settings: BrainSettings,
    seen: Seen | None = None,
) -> Interpretation:
    """A pick takes one of the plate's own SKUs unless a foreign unit on it fits clearly better.

    ``home``: the plate's own SKUs -> prior weight (facings); normalised, so
    together they hold prior 1 against ``foreign_prior`` for the likeliest
    stray. "Clearly" is this likelihood ratio against the prior odds: a stray
    unit is rarer than the plate's own stock, so a slightly better fit alone
    does not make a pick a stray. Between home SKUs of equal weight the prior
    decides, and the line is capped at ``shared_plate_tie_confidence`` — unless
    a shelf camera ``seen`` the product in the hand: its likelihood multiplies
    every candidate's, and a clear sighting settles a tie.

    >>> from iot.store import CatalogItem
    >>> cup = dict(gtin="04006380000018", price_cents=99, unit_weight_g=515.0)
    >>> cup.update(weight_tolerance_g=3.0)
    >>> items = {s: CatalogItem(sku=s, name=s, **cup) for s in ("YOG-ST", "YOG-VA")}
    >>> got = interpret_pick(514.0, 2.0, home={"YOG-ST": 2, "YOG-VA": 1},
    ...     foreign_on_plate={}, items=items, settings=BrainSettings())
    >>> got.sku, got.sku_confidence < BrainSettings().review_below
    ('YOG-ST', True)
    """
    shares = _shares(home)
    home_fits = []
    for sku, share in shares.items():
        item = items.get(sku)
        if item is None or weight_g < 0.5 * item.unit_weight_g:
            continue  # less than half a unit: nothing of this home SKU was taken
        f = fit(item, weight_g, noise_g, settings)
        if f is not None:
            home_fits.append((share, f))
    foreign_fits = [
        f
        for sku, n in sorted(foreign_on_plate.items())
        if sku in items
        and (f := fit(items[sku], weight_g, noise_g, settings, n)) is not None
        and f.z <= settings.fit_max_z
    ]
    best_foreign = min(foreign_fits, default=None)
    candidates = list(home_fits)
    if best_foreign is not None:
        candidates.append((settings.foreign_prior, replace(best_foreign, foreign=True)))
    if not candidates:
        return Interpretation(
            None, 0, 0.0, 0.0, f"pick of {weight_g:.0f} g fits no unit on the plate"
        )
    look = seen_likelihood(seen)
    # Log scores, not posteriors, choose: they never underflow; the first listed wins a tie.
    scores = [math.log(prior * look(f.sku)) - f.z**2 / 2 for prior, f in candidates]
    k = max(range(len(candidates)), key=lambda i: (scores[i], -i))
    chosen = candidates[k][1]
    sku_conf = _posteriors([(prior * look(f.sku), f.z) for prior, f in candidates])[k]
    if chosen.foreign:
        return Interpretation(
            chosen.sku,
            chosen.count,
            weight_confidence(chosen.z, settings),
            sku_conf,
            f"pick of {weight_g:.0f} g fits {chosen.count} x foreign {chosen.sku} "
            f"(z {chosen.z:.1f}) left on the plate" + _seen_note(seen),
            {chosen.sku: -chosen.count},
        )
    reason = f"pick of {weight_g:.0f} g fits {chosen.count} x {chosen.sku} (z {chosen.z:.1f})"
    reason += _seen_note(seen)
    # Compared as log likelihoods: two equally bad fits still tie, they do not both underflow.
    separation = math.log(settings.shared_plate_separation)
    twins = [
        f.sku
        for _, f in home_fits
        if f.sku != chosen.sku
        and (f.z**2 - chosen.z**2) / 2 + math.log(look(chosen.sku) / look(f.sku)) < separation
    ]
    if twins:
        sku_conf = min(sku_conf, settings.shared_plate_tie_confidence)
        reason += (
            f", but weight cannot tell it from {', '.join(twins)} on the same plate "
            f"(likeliest by facings, {sku_conf:.0%} sure)"
        )
    return Interpretation(
        chosen.sku, chosen.count, weight_confidence(chosen.z, settings), sku_conf, reason
    )


def interpret_put(
    weight_g: float,
    noise_g: float,
    *,
    home_skus: Collection[str],
    cart: Mapping[str, int],
    items: Mapping[str, CatalogItem],
    settings: BrainSettings,
    picked_unit_weights_g: Mapping[str, Sequence[float]] | None = None,
    seen: Seen | None = None,
) -> Interpretation:
    """A put returns units the shopper holds: the likeliest (SKU, count) in their cart.

    Each candidate's weight fit is weighed by a prior: the units of it the
    shopper holds, times ``wrong_plate_prior`` unless it is one of the plate's
    own SKUs ``home_skus`` (most put-backs go where the item came from). The
    SKU confidence is the chosen candidate's posterior, so two near-equal
    weights in one cart come out unsure and the visit is reviewed rather than
    guessed; two SKUs of one shared plate that the weight cannot tell apart
    are capped at ``shared_plate_tie_confidence`` whatever the cart holds.

    ``picked_unit_weights_g``: per SKU, the unit weights the shelves measured
    when this shopper picked it. A unit put back weighs what it weighed when
    taken, which tells apart SKUs whose catalog weights are nearly equal.
    ``seen``: what a shelf camera saw in the hand going in (see ``interpret_pick``).
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

    look = seen_likelihood(seen)

    def prior(f: Fit) -> float:
        home = 1.0 if f.sku in home_skus else settings.wrong_plate_prior
        return cart[f.sku] * home * look(f.sku)

    picked = picked_unit_weights_g or {}
    likelihoods = [
        _put_likelihood(
            f,
            items[f.sku],
            weight_g,
            noise_g,
            picked_g=picked.get(f.sku, ()),
            settings=settings,
        )
        for f in fits
    ]
    posteriors = _normalise([prior(f) * lk for f, lk in zip(fits, likelihoods, strict=True)])
    best = max(range(len(fits)), key=lambda i: (posteriors[i], -fits[i].z))
    chosen, sku_conf = fits[best], posteriors[best]
    wrong_plate = chosen.sku not in home_skus
    twins = [
        f.sku
        for f, lk in zip(fits, likelihoods, strict=True)
        if not wrong_plate
        and f.sku != chosen.sku
        and f.sku in home_skus
        and likelihoods[best] * look(chosen.sku)
        < settings.shared_plate_separation * lk * look(f.sku)
    ]
    if twins:
        sku_conf = min(sku_conf, settings.shared_plate_tie_confidence)
    reason = f"put of {weight_g:.0f} g fits {chosen.count} x {chosen.sku} (z {chosen.z:.1f})"
    reason += _seen_note(seen)
    if sku_conf < 0.95:
        reason += f", {sku_conf:.0%} likely among near-equal fits"
    if twins:
        reason += f"; weight cannot tell it from {', '.join(twins)} of the same plate"
    if wrong_plate:
        stocking = ", ".join(sorted(home_skus)) or "nothing"
        reason += f"; left on a plate stocking {stocking}"
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


@dataclass(frozen=True)
class Seen:
    """What a shelf camera saw in the hand: a SKU and the classifier's confidence in it."""

    sku: str
    confidence: float
    camera_id: str = ""
    reached_only: bool = False  # the hand was over the SKU's facings; no package was seen


SEEN_FLOOR = 0.01  # no sighting is certain: a wrong one must stay outweighable by the scale


def seen_likelihood(seen: Seen | None) -> Callable[[str], float]:
    """Likelihood of each SKU under a sighting: ``c`` for the SKU seen, ``1 - c`` otherwise.

    Only ratios matter, so the other SKUs need not share ``1 - c``. Clipped to
    [SEEN_FLOOR, 1 - SEEN_FLOOR] so a confident but wrong classifier cannot
    overrule a weight that clearly disagrees.

    >>> look = seen_likelihood(Seen("A", 0.9))
    >>> round(look("A") / look("B"), 6)
    9.0
    >>> seen_likelihood(None)("A")
    1.0
    """
    if seen is None:
        return lambda _sku: 1.0
    c = min(max(seen.confidence, SEEN_FLOOR), 1.0 - SEEN_FLOOR)
    return lambda sku: c if sku == seen.sku else 1.0 - c


def _seen_note(seen: Seen | None) -> str:
    if seen is None:
        return ""
    where = f" {seen.camera_id}" if seen.camera_id else ""
    what = f"a hand reach for {seen.sku}" if seen.reached_only else f"{seen.sku} in the hand"
    return f"; camera{where} saw {what} ({seen.confidence:.0%})"


def _gauss(z: float) -> float:
    return math.exp(-0.5 * min(z * z, 1400.0))


def _shares(weights: Mapping[str, float]) -> dict[str, float]:
    """Prior weights normalised to sum 1 (file order kept); non-positive ones dropped."""
    positive = {k: float(w) for k, w in weights.items() if w > 0}
    total = sum(positive.values())
    return {k: w / total for k, w in positive.items()}


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
