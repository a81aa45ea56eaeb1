"""Shopper bodies for the rendered ceiling cameras: appearance, pose and 3-D parts.

A body is a handful of vertical elliptic cylinders (legs, torso, arms, head,
hair) standing on the floor. Each part is given as a ring of 3-D points at
its bottom and at its top; the renderer projects them through the camera and
fills their convex hull, so perspective comes for free: a head straight below
a camera is a circle, a body near the image edge leans outwards.

Everything here is pure geometry and colours, deterministic for a seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from iot.store import Store
from sim.shoppers import VisitPlan

__all__ = ["Appearance", "Body", "Pose", "appearance_for", "body_parts", "pose_at"]

RING = 10  # points per ellipse ring; enough for a smooth hull at these sizes
STRIDE_M = 1.3  # distance walked per full leg cycle
LEG_SWING_M = 0.16  # how far a foot swings forward/back at full stride
ARM_LENGTH_M = 0.72  # shoulder to hand when reaching into a shelf
_UNIT = np.linspace(0.0, 2.0 * math.pi, RING, endpoint=False)
_COS, _SIN = np.cos(_UNIT), np.sin(_UNIT)

_SKIN_BGR = [(150, 180, 225), (120, 160, 210), (90, 130, 185), (60, 95, 140), (45, 70, 105)]
_HAIR_BGR = [(25, 25, 30), (30, 45, 70), (60, 90, 130), (120, 170, 210), (150, 150, 155)]


@dataclass(frozen=True)
class Appearance:
    """How one shopper looks; colours are BGR."""

    height_scale: float
    top_bgr: tuple[int, int, int]
    trousers_bgr: tuple[int, int, int]
    skin_bgr: tuple[int, int, int]
    hair_bgr: tuple[int, int, int]
    girth_scale: float


@dataclass(frozen=True)
class Pose:
    """Where a shopper is and how they hold themselves at one instant."""

    x_m: float
    y_m: float
    heading_rad: float
    walk_phase_rad: float
    moving: float  # 0 standing .. 1 walking; scales the leg swing
    hand_m: tuple[float, float, float] | None  # reaching hand, world metres, or None


@dataclass(frozen=True)
class Body:
    """A shopper's solid parts: part ``i`` is the hull of ``points_m[i]`` (2 * RING, 3).

    ``points_m[i]`` holds a ring of points at the part's bottom, then one at its top.
    """

    names: tuple[str, ...]
    points_m: np.ndarray  # (P, 2 * RING, 3)
    centres_m: np.ndarray  # (P, 3)
    bgr: tuple[tuple[int, int, int], ...]


def _bgr(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int, int]:
    b, g, r = rng.integers(lo, hi, size=3)
    return int(b), int(g), int(r)


def appearance_for(seed: int, visit_index: int) -> Appearance:
    """A shopper's look, drawn from its own stream so shoppers do not shift each other."""
    rng = np.random.default_rng([seed, 7, visit_index])
    return Appearance(
        height_scale=float(rng.uniform(0.9, 1.1)),
        top_bgr=_bgr(rng, 20, 240),
        trousers_bgr=_bgr(rng, 15, 120),
        skin_bgr=_SKIN_BGR[int(rng.integers(len(_SKIN_BGR)))],
        hair_bgr=_HAIR_BGR[int(rng.integers(len(_HAIR_BGR)))],
        girth_scale=float(rng.uniform(0.9, 1.15)),
    )


@dataclass(frozen=True)
class _Motion:
    """Per-visit arrays derived once from the keyframes."""

    times_s: np.ndarray
    walked_m: np.ndarray  # distance walked at each keyframe
    heading_rad: np.ndarray  # heading of the latest moving segment at each keyframe


def _motion(visit: VisitPlan) -> _Motion:
    dx, dy = np.diff(visit.xs_m), np.diff(visit.ys_m)
    seg = np.hypot(dx, dy)
    walked = np.concatenate([[0.0], np.cumsum(seg)])
    heading = np.zeros(len(visit.times_s))
    last = math.pi / 2  # shoppers enter heading into the store (+y)
    for i in range(len(seg)):
        if seg[i] > 1e-6:
            last = math.atan2(dy[i], dx[i])
        heading[i] = last
    if len(heading):
        heading[-1] = last
    return _Motion(visit.times_s, walked, heading)


_MOTION_CACHE: dict[int, tuple[VisitPlan, _Motion]] = {}


def _cached_motion(visit: VisitPlan) -> _Motion:
    # Keyed by object id, holding the visit itself so the id cannot be reused.
    hit = _MOTION_CACHE.get(id(visit))
    if hit is None or hit[0] is not visit:
        if len(_MOTION_CACHE) > 4096:
            _MOTION_CACHE.clear()
        hit = (visit, _motion(visit))
        _MOTION_CACHE[id(visit)] = hit
    return hit[1]


def _reach_hand(
    store: Store, visit: VisitPlan, t_s: float, x: float, y: float
) -> tuple[float, float, float] | None:
    for reach in visit.reaches:
        if reach.start_s <= t_s <= reach.end_s:
            _, shelf, _ = store.plate(reach.plate_id)
            (x0, y0), (x1, y1) = store.plate_front_m(reach.plate_id)
            tx, ty = (x0 + x1) / 2, (y0 + y1) / 2
            tz = min(max(shelf.height_m + 0.15, 0.3), 1.6)
            # The hand goes in and comes back out over the reach.
            frac = math.sin(
                math.pi * (t_s - reach.start_s) / max(reach.end_s - reach.start_s, 1e-6)
            )
            sx, sy, sz = x, y, 1.35
            vx, vy, vz = tx - sx, ty - sy, tz - sz
            norm = math.sqrt(vx * vx + vy * vy + vz * vz) or 1.0
            length = min(norm, ARM_LENGTH_M) * (0.35 + 0.65 * frac)
            return sx + vx / norm * length, sy + vy / norm * length, sz + vz / norm * length
    return None


def pose_at(store: Store, visit: VisitPlan, t_s: float) -> Pose:
    """The shopper's pose at ``t_s`` from its planned trajectory and reaches."""
    m = _cached_motion(visit)
    x = float(np.interp(t_s, m.times_s, visit.xs_m))
    y = float(np.interp(t_s, m.times_s, visit.ys_m))
    walked = float(np.interp(t_s, m.times_s, m.walked_m))
    before = float(np.interp(t_s - 0.2, m.times_s, m.walked_m))
    moving = min(max((walked - before) / 0.2 / 0.8, 0.0), 1.0)
    k = int(np.clip(np.searchsorted(m.times_s, t_s, side="right") - 1, 0, len(m.times_s) - 1))
    heading = float(m.heading_rad[k])
    hand = _reach_hand(store, visit, t_s, x, y)
    if hand is not None:
        heading = math.atan2(hand[1] - y, hand[0] - x)  # face the shelf while reaching
    phase = 2.0 * math.pi * walked / STRIDE_M
    return Pose(x, y, heading, phase, moving, hand)


class _Parts:
    """Collects parts as rows, then builds every ring at once (one numpy pass per body)."""

    def __init__(self, heading: float) -> None:
        self.heading = heading
        self.names: list[str] = []
        self.rows: list[tuple[float, ...]] = []
        self.bgr: list[tuple[int, int, int]] = []

    def add(
        self,
        name: str,
        bottom: tuple[float, float, float],
        top: tuple[float, float, float],
        size: tuple[float, float],
        bgr: tuple[int, int, int],
    ) -> None:
        """A vertical-ish elliptic cylinder, ``size`` = (across, along) the heading, m."""
        self.names.append(name)
        self.rows.append((*bottom, *top, *size))
        self.bgr.append(bgr)

    def build(self) -> Body:
        r = np.asarray(self.rows)  # (P, 8)
        ch, sh = math.cos(self.heading), math.sin(self.heading)
        a = r[:, 7:8] * _COS  # along the heading, (P, RING)
        b = r[:, 6:7] * _SIN  # across it
        dx, dy = a * ch - b * sh, a * sh + b * ch
        ring = np.empty((len(r), 2 * RING, 3))
        for k, off in ((0, 0), (RING, 3)):
            ring[:, k : k + RING, 0] = r[:, off : off + 1] + dx
            ring[:, k : k + RING, 1] = r[:, off + 1 : off + 2] + dy
            ring[:, k : k + RING, 2] = r[:, off + 2 : off + 3]
        centres = (r[:, 0:3] + r[:, 3:6]) / 2
        return Body(tuple(self.names), ring, centres, tuple(self.bgr))


def body_parts(pose: Pose, look: Appearance) -> Body:
    """The solid parts of a shopper in world metres (unsorted)."""
    s, g, h = look.height_scale, look.girth_scale, pose.heading_rad
    fx, fy = math.cos(h), math.sin(h)  # forward
    lx, ly = -fy, fx  # left
    x, y = pose.x_m, pose.y_m
    swing = LEG_SWING_M * pose.moving * math.sin(pose.walk_phase_rad)
    parts = _Parts(h)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        foot = sign * swing
        bx, by = x + lx * 0.1 * sign + fx * foot, y + ly * 0.1 * sign + fy * foot
        hx, hy = x + lx * 0.09 * sign, y + ly * 0.09 * sign
        parts.add(
            f"leg_{side}", (bx, by, 0.0), (hx, hy, 0.85 * s), (0.075, 0.085), look.trousers_bgr
        )
    parts.add("torso", (x, y, 0.82 * s), (x, y, 1.45 * s), (0.2 * g, 0.12 * g), look.top_bgr)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        sx, sy = x + lx * 0.25 * g * sign, y + ly * 0.25 * g * sign
        hand = pose.hand_m
        if sign < 0 and hand is not None:
            parts.add(f"arm_{side}", (sx, sy, 1.35 * s), hand, (0.05, 0.05), look.top_bgr)
            parts.add(
                f"hand_{side}",
                (hand[0], hand[1], hand[2] - 0.04),
                (hand[0], hand[1], hand[2] + 0.04),
                (0.05, 0.06),
                look.skin_bgr,
            )
            continue
        arm_swing = -sign * swing * 0.8
        ex, ey = sx + fx * arm_swing, sy + fy * arm_swing
        parts.add(f"arm_{side}", (ex, ey, 0.8 * s), (sx, sy, 1.42 * s), (0.05, 0.055), look.top_bgr)
    parts.add("neck", (x, y, 1.42 * s), (x, y, 1.52 * s), (0.05, 0.05), look.skin_bgr)
    parts.add("head", (x, y, 1.52 * s), (x, y, 1.7 * s), (0.085, 0.1), look.skin_bgr)
    hx, hy = x - fx * 0.015, y - fy * 0.015  # hair sits a little to the back of the head
    parts.add("hair", (hx, hy, 1.66 * s), (hx, hy, 1.74 * s), (0.08, 0.09), look.hair_bgr)
    return parts.build()
