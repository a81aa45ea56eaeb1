"""Synthetic ceiling-camera truth for the floor tests, and a floor-distance MOT scorer.

People are cylinders (feet at 0 m, head at ``height_m``, shoulders 0.45 m
wide) walking known floor paths; their boxes are the bounding boxes of the
body's points projected through each camera with ``iot.cameras.world_to_pixel``,
cut by the image border, with pixel noise and random misses. Other test
modules import the helpers from here (pytest puts this folder on sys.path).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from iot.cameras import world_to_pixel
from iot.store import Camera, Store, load_store
from vision.assignment import match_capped, match_max_cardinality
from vision.detections import Detections

DEMO = Path(__file__).resolve().parents[3] / "stores" / "demo.yaml"
T0 = 1_700_000_000.0
SHOULDER_M = 0.45


def demo_store() -> Store:
    return load_store(DEMO)


def _body_points(x: float, y: float, height_m: float) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    rings = []
    for z, r in (
        (0.0, 0.15),
        (0.5 * height_m, SHOULDER_M / 2),
        (0.82 * height_m, SHOULDER_M / 2),
        (height_m, 0.1),
    ):
        rings.append(
            np.column_stack([x + r * np.cos(angles), y + r * np.sin(angles), np.full(12, z)])
        )
    return np.concatenate(rings)


def person_box(cam: Camera, x: float, y: float, height_m: float = 1.7) -> np.ndarray | None:
    """The visible box (l, t, r, b) of a person at floor (x, y), or None when not seen."""
    uv, ok = world_to_pixel(cam, _body_points(x, y, height_m))
    if not ok.all():
        return None
    lo, hi = uv.min(axis=0), uv.max(axis=0)
    full = float(np.prod(hi - lo))
    clo = np.clip(lo, 0, [cam.width_px, cam.height_px])
    chi = np.clip(hi, 0, [cam.width_px, cam.height_px])
    seen = float(np.prod(np.clip(chi - clo, 0, None)))
    # A detector misses a person mostly outside the frame.
    if full <= 0 or seen < 0.35 * full:
        return None
    return np.concatenate([clo, chi])


@dataclass(frozen=True)
class Walker:
    """A synthetic person: truth id, a position function of time, a height."""

    person_id: int
    where: Callable[[float], tuple[float, float] | None]  # None: not in the store
    height_m: float = 1.7
    hidden: tuple[float, float] | None = None  # (start, end) s: occluded from every camera


def line_walk(
    a: Sequence[float], b: Sequence[float], t_start: float, speed: float = 1.2
) -> Callable[[float], tuple[float, float] | None]:
    """Walk from a to b at ``speed`` m/s from ``t_start`` s; absent before and after."""
    a_, b_ = np.asarray(a, float), np.asarray(b, float)
    dur = float(np.hypot(*(b_ - a_))) / speed

    def where(t: float) -> tuple[float, float] | None:
        if t < t_start or t > t_start + dur:
            return None
        p = a_ + (b_ - a_) * (t - t_start) / dur
        return float(p[0]), float(p[1])

    return where


def frame_detections(
    store: Store,
    walkers: Sequence[Walker],
    t: float,
    rng: np.random.Generator,
    *,
    noise_px: float = 2.0,
    miss_rate: float = 0.1,
) -> tuple[dict[str, Detections], dict[int, tuple[float, float]]]:
    """Detections per ceiling camera at time ``t`` (s from the start), and the truth."""
    truth: dict[int, tuple[float, float]] = {}
    for w in walkers:
        p = w.where(t)
        if p is not None:
            truth[w.person_id] = p
    out: dict[str, Detections] = {}
    for cam in store.devices.cameras:
        if cam.kind != "ceiling":
            continue
        boxes = []
        for w in walkers:
            p = truth.get(w.person_id)
            if p is None or (w.hidden and w.hidden[0] <= t <= w.hidden[1]):
                continue
            box = person_box(cam, p[0], p[1], w.height_m)
            if box is None or rng.random() < miss_rate:
                continue
            box = box + rng.normal(0, noise_px, 4)
            box[2:] = np.maximum(box[2:], box[:2] + 1)
            boxes.append(box)
        out[cam.id] = Detections.from_arrays(
            np.array(boxes).reshape(-1, 4), np.full(len(boxes), 0.9), np.zeros(len(boxes))
        )
    return out, truth


@dataclass
class FloorScore:
    """CLEAR-MOT and IDF1 counts with a floor-distance match criterion."""

    gt: int = 0
    hyp: int = 0
    matches: int = 0
    misses: int = 0
    false_positives: int = 0
    switches: int = 0
    idtp: int = 0
    sq_err_m2: float = 0.0

    @property
    def mota(self) -> float:
        return 1.0 - (self.misses + self.false_positives + self.switches) / max(self.gt, 1)

    @property
    def idf1(self) -> float:
        return 2 * self.idtp / max(self.gt + self.hyp, 1)

    @property
    def rms_m(self) -> float:
        return float(np.sqrt(self.sq_err_m2 / max(self.matches, 1)))


class FloorScorer:
    """Pairs truth and tracks per frame within ``max_m`` (last pairing kept while valid)."""

    def __init__(self, max_m: float = 0.5) -> None:
        self.max_m = max_m
        self.s = FloorScore()
        self._pair: dict[int, str] = {}
        self._overlap: dict[tuple[int, str], int] = defaultdict(int)
        self._gt_ids: set[int] = set()
        self._hyp_ids: set[str] = set()

    def update(
        self, truth: dict[int, tuple[float, float]], hyp: dict[str, tuple[float, float]]
    ) -> None:
        gids, hids = sorted(truth), sorted(hyp)
        self._gt_ids.update(gids)
        self._hyp_ids.update(hids)
        self.s.gt += len(gids)
        self.s.hyp += len(hids)
        g_xy = np.array([truth[g] for g in gids]).reshape(-1, 2)
        h_xy = np.array([hyp[h] for h in hids]).reshape(-1, 2)
        dist = np.linalg.norm(g_xy[:, None, :] - h_xy[None, :, :], axis=2)
        valid = dist < self.max_m
        for i, j in zip(*np.nonzero(valid), strict=True):
            self._overlap[(gids[i], hids[j])] += 1
        free_g, free_h = np.ones(len(gids), bool), np.ones(len(hids), bool)
        col = {h: j for j, h in enumerate(hids)}
        for i, g in enumerate(gids):
            j = col.get(self._pair.get(g, ""))
            if j is not None and free_h[j] and valid[i, j]:
                free_g[i] = free_h[j] = False
                self._match(g, hids[j], float(dist[i, j]))
        gi, hj = np.flatnonzero(free_g), np.flatnonzero(free_h)
        sub = np.where(valid[np.ix_(gi, hj)], dist[np.ix_(gi, hj)], np.nan)
        for r, k in zip(*match_max_cardinality(sub, self.max_m), strict=True):
            g, h = gids[gi[r]], hids[hj[k]]
            free_g[gi[r]] = free_h[hj[k]] = False
            self.s.switches += int(g in self._pair and self._pair[g] != h)
            self._match(g, h, float(dist[gi[r], hj[k]]))
        self.s.misses += int(free_g.sum())
        self.s.false_positives += int(free_h.sum())

    def _match(self, g: int, h: str, d: float) -> None:
        self.s.matches += 1
        self.s.sq_err_m2 += d * d
        self._pair[g] = h

    def score(self) -> FloorScore:
        if self._overlap:
            gl, hl = sorted(self._gt_ids), sorted(self._hyp_ids)
            w = np.full((len(gl), len(hl)), np.nan)
            for (g, h), n in self._overlap.items():
                w[gl.index(g), hl.index(h)] = n
            top = float(np.nanmax(w)) + 1.0
            r, c = match_capped(top - w, top)
            self.s.idtp = int(w[r, c].sum())
        return self.s


# --- the helpers' own checks ---


def test_person_under_a_camera_gives_a_box_around_the_image_centre() -> None:
    store = demo_store()
    cam = store.devices.cameras[0]
    box = person_box(cam, cam.position_m[0], cam.position_m[1])
    assert box is not None
    assert box[0] < cam.width_px / 2 < box[2] and box[1] < cam.height_px / 2 < box[3]


def test_person_far_outside_a_camera_is_not_seen() -> None:
    cam = demo_store().devices.cameras[0]
    assert person_box(cam, cam.position_m[0] + 8.0, cam.position_m[1]) is None


def test_scorer_counts_a_switch_and_a_miss() -> None:
    sc = FloorScorer(0.5)
    sc.update({1: (0.0, 0.0)}, {"a": (0.1, 0.0)})
    sc.update({1: (0.0, 0.0)}, {"b": (0.1, 0.0)})
    sc.update({1: (0.0, 0.0)}, {"b": (3.0, 0.0)})
    s = sc.score()
    assert (s.matches, s.switches, s.misses, s.false_positives) == (2, 1, 1, 1)
    assert s.mota == pytest.approx(1 - 3 / 3)
