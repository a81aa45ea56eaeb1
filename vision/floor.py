"""From camera-local person tracks to one store-level track per shopper on the floor.

Two stages, both pure (no bus, no clock):

1. **Projection** (:func:`project_boxes`). A ceiling camera sees a standing
   person as a box stretched radially away from the nadir: the feet are
   nearest the image centre, the head furthest. The box centre lies between
   the two and is cast onto a horizontal plane at ``person_plane_height_m``.
   For a camera ``H`` metres up and a person ``h`` tall the unbiased plane
   height is ``H - 2 / (1/H + 1/(H - h))`` (the box centre averages the feet's
   and the head's radial pixel offsets, which scale as ``1/H`` and
   ``1/(H - h)``); for H = 3.4 m and h = 1.7 m that is 1.13 m, hence the
   default of 1.1 m. Its uncertainty grows with the floor distance from the
   camera (people are not all 1.7 m tall, so the radial offset is off in
   proportion) and jumps for boxes cut by the image border (their centre is
   pulled inwards).
2. **Fusion** (:class:`FloorFusion`). Observations from every camera, each
   tagged with its camera-local track id, update store-level tracks that run
   a constant-velocity Kalman filter in floor metres. A camera-local id stays
   bound to the store track it first fed (while it stays within
   ``sticky_gate_m``), so a hand-off between overlapping cameras keeps the
   store id; unbound observations are paired with store tracks by the exact
   assignment of :func:`vision.assignment.match_capped`, at most one per
   camera per track, within a gate that widens while a track coasts (short
   occlusions are bridged). Leftovers from different cameras that agree
   start one new track. Tracks born near an entry gate line are flagged;
   tracks that vanish near an exit gate end at once, others after
   ``max_coast_s``; two tracks that stay on top of each other merge.

>>> from iot.store import Camera
>>> cam = Camera(id="c", kind="ceiling", position_m=(5.0, 5.0, 3.0), focal_px=200)
>>> xy, sigma = project_boxes(cam, np.array([[300.0, 220.0, 340.0, 260.0]]), FloorSettings())
>>> xy.round(2).tolist(), bool(sigma[0] > 0)
([[5.0, 5.0]], True)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from iot.cameras import camera_rotation, pixel_to_plane, world_to_pixel
from iot.store import Camera, Store
from vision.appearance import look_distance
from vision.assignment import match_capped
from vision.floor_settings import FloorSettings

__all__ = [
    "CameraObservation",
    "FloorFusion",
    "FloorSettings",
    "FloorTrack",
    "FloorUpdate",
    "project_boxes",
]

log = logging.getLogger(__name__)


def project_boxes(
    cam: Camera, xyxy: np.ndarray, settings: FloorSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Floor points (N, 2) and their 1-sigma uncertainty (N,) in metres for person boxes.

    NaN rows are boxes whose ray misses the plane (a camera tilted to look up).
    """
    s = settings
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    centre_xy = pixel_to_plane(cam, (boxes[:, :2] + boxes[:, 2:]) / 2, s.person_plane_height_m)
    m = s.border_margin_px
    cut_u = (boxes[:, 0] <= m) | (boxes[:, 2] >= cam.width_px - m)
    cut_v = (boxes[:, 1] <= m) | (boxes[:, 3] >= cam.height_px - m)
    xy = centre_xy
    if (cut_u | cut_v).any():
        xy = _mix_cut_axes(cam, boxes, centre_xy, np.column_stack([cut_u, cut_v]), s)
    depth = max(cam.position_m[2] - s.person_plane_height_m, 1e-3)
    pixel_m = s.pixel_sigma_px * depth / cam.focal_px
    dist = np.hypot(xy[:, 0] - cam.position_m[0], xy[:, 1] - cam.position_m[1])
    radial = dist * s.height_sigma_m / depth
    cut_m = np.where(cut_u | cut_v, s.border_sigma_m, 0.0)
    return xy, np.sqrt(pixel_m**2 + radial**2 + cut_m**2)


def _mix_cut_axes(
    cam: Camera, boxes: np.ndarray, centre_xy: np.ndarray, cut_uv: np.ndarray, s: FloorSettings
) -> np.ndarray:
    """Along an image axis the border cut, trust the box's edge nearest the nadir instead.

    The border cuts the far (head) end of a box; its near end is the lower
    body, on the floor, ``body_radius_m`` short of the body's centre. The
    image axes map to floor directions only for a downward-looking camera,
    which ceiling cameras are; for others the mix is approximate (hence the
    extra ``border_sigma_m``).
    """
    origin = np.asarray(cam.position_m, dtype=np.float64)
    nadir_uv, seen = world_to_pixel(cam, np.array([[origin[0], origin[1], 0.0]]))
    if not seen[0]:
        return centre_xy
    near_uv = np.clip(nadir_uv[0], boxes[:, :2], boxes[:, 2:])
    near_xy = pixel_to_plane(cam, near_uv, s.near_edge_height_m)
    radial = near_xy - origin[:2]
    norm = np.linalg.norm(radial, axis=1, keepdims=True)
    near_xy = (
        near_xy + np.where(norm > 1e-6, radial / np.maximum(norm, 1e-6), 0.0) * s.body_radius_m
    )
    rot = camera_rotation(cam)
    mixed = np.empty_like(centre_xy)
    mixed[:] = origin[:2]
    for axis in (0, 1):
        cut = cut_uv[:, axis]
        e = rot[:2, axis] / max(float(np.linalg.norm(rot[:2, axis])), 1e-9)
        pick = np.where(cut[:, None], near_xy, centre_xy)
        mixed += ((pick - origin[:2]) @ e)[:, None] * e[None, :]
    return mixed


@dataclass(frozen=True)
class CameraObservation:
    """One camera-local track's floor point this frame."""

    camera_id: str
    local_id: int
    x_m: float
    y_m: float
    sigma_m: float
    look: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, int]:
        return self.camera_id, self.local_id


@dataclass(frozen=True)
class FloorTrack:
    """A reported store-level track at one instant."""

    track_id: str
    x_m: float
    y_m: float
    vx_m_s: float
    vy_m_s: float
    sigma_m: float
    born_at_entry: bool
    unseen_s: float
    cameras: tuple[str, ...]
    # the person's look this instant, if seen clear of others and off the gates (else None)
    look: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def confidence(self) -> float:
        """1 while observed, decaying while coasting."""
        return float(math.exp(-self.unseen_s))


@dataclass(frozen=True)
class FloorUpdate:
    """What one fusion step reports: live tracks and ids that ended now."""

    time_s: float
    tracks: list[FloorTrack]
    ended: list[str]


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _segment_distance(p: np.ndarray, a: Sequence[float], b: Sequence[float]) -> float:
    pa, ba = p - np.asarray(a), np.asarray(b) - np.asarray(a)
    t = float(np.clip(pa @ ba / max(float(ba @ ba), 1e-12), 0.0, 1.0))
    return float(np.hypot(*(pa - t * ba)))


@dataclass
class _StoreTrack:
    """Mutable state of one store track (not exported)."""

    number: int
    x: np.ndarray  # (x, y, vx, vy)
    P: np.ndarray
    born_s: float
    last_seen_s: float
    born_at_entry: bool
    hits: int = 1
    confirmed: bool = False
    near_since_s: dict[int, float] = field(default_factory=dict)
    cameras: tuple[str, ...] = ()
    look: np.ndarray | None = None  # running mean of the person's colour descriptor
    # identity, for swap repair: who the track's id stands for (frozen after anchor_looks)
    anchor: np.ndarray | None = None
    anchor_n: int = 0
    # what the person under the track looks like now: clear looks since the last crowding
    recent: np.ndarray | None = None
    recent_n: int = 0
    met_s: dict[int, float] = field(default_factory=dict)  # other track number -> last close
    clear_look: np.ndarray | None = None  # this step's look, if clear of others and off the gates

    @property
    def pos(self) -> np.ndarray:
        return self.x[:2]


class FloorFusion:
    """Store-level tracks from camera-local observations; call :meth:`update` per frame set."""

    def __init__(self, store: Store, settings: FloorSettings | None = None) -> None:
        self.store = store
        self.settings = settings or FloorSettings()
        self._tracks: list[_StoreTrack] = []
        self._owner: dict[tuple[str, int], int] = {}  # camera-local key -> store track number
        self._lost: list[_StoreTrack] = []  # retired in the store, may be revived
        self._next = 1
        self._time_s: float | None = None
        self._entry = [g.line_m for g in store.gates("entry")]
        self._exit = [g.line_m for g in store.gates("exit")]

    def track_name(self, number: int) -> str:
        return f"{self.settings.id_prefix}{number}"

    # --- one step ---

    def update(self, time_s: float, observations: Sequence[CameraObservation]) -> FloorUpdate:
        """Advance to ``time_s`` (event time) with this frame set's observations."""
        if self._time_s is not None and time_s < self._time_s:
            raise ValueError(
                f"FloorFusion.update went back in time: {time_s} after {self._time_s}; "
                "feed frame sets in event-time order"
            )
        dt = 0.0 if self._time_s is None else time_s - self._time_s
        self._time_s = time_s
        for t in self._tracks:
            self._predict(t, dt, time_s)
        assigned = self._associate(observations, time_s)
        for t in self._tracks:
            obs = assigned.get(t.number, [])
            for o in obs:
                self._correct(t, o)
            self._learn_look(t, obs)
            t.cameras = tuple(sorted(o.camera_id for o in obs))
            if obs:
                t.last_seen_s = time_s
                t.hits += 1
                if t.hits >= self.settings.confirm_hits and not t.confirmed:
                    t.confirmed = True
                    self._revive(t, time_s)
        renamed: list[str] = []
        if self.settings.anchor_looks:
            self._repair_swaps(time_s)
            renamed = self._reclaim(time_s)
        ended = renamed + self._merge(time_s) + self._retire(time_s)
        report = [
            self._report(t, time_s)
            for t in self._tracks
            if t.confirmed and time_s - t.last_seen_s <= self.settings.report_coast_s
        ]
        return FloorUpdate(time_s, report, ended)

    # --- Kalman filter in floor metres ---

    def _predict(self, t: _StoreTrack, dt: float, time_s: float) -> None:
        if dt <= 0:
            return
        if time_s - t.last_seen_s > dt:  # coasting: let the velocity die out
            t.x[2:] *= math.exp(-self.settings.coast_damping_per_s * dt)
        f = np.eye(4)
        f[0, 2] = f[1, 3] = dt
        q1 = (
            np.array([[dt**4 / 4, dt**3 / 2], [dt**3 / 2, dt**2]])
            * self.settings.accel_sigma_m_s2**2
        )
        q = np.zeros((4, 4))
        q[np.ix_([0, 2], [0, 2])] = q1
        q[np.ix_([1, 3], [1, 3])] = q1
        t.x = f @ t.x
        t.P = f @ t.P @ f.T + q

    @staticmethod
    def _correct(t: _StoreTrack, o: CameraObservation) -> None:
        h = np.eye(2, 4)
        s = h @ t.P @ h.T + np.eye(2) * o.sigma_m**2
        gain = np.linalg.solve(s, h @ t.P).T
        t.x = t.x + gain @ (np.array([o.x_m, o.y_m]) - t.x[:2])
        t.P = (np.eye(4) - gain @ h) @ t.P

    def _learn_look(self, t: _StoreTrack, obs: list[CameraObservation]) -> None:
        t.clear_look = None
        looks = [o.look for o in obs if o.look is not None]
        if not looks:
            return
        s = self.settings
        crowded = any(
            u is not t and float(np.hypot(*(u.pos - t.pos))) < s.look_clear_m for u in self._tracks
        )
        if crowded:
            t.recent, t.recent_n = None, 0  # a box of two teaches nothing about one
            if t.look is not None:
                return
        new = np.mean(looks, axis=0)
        mixed = new if t.look is None else s.look_memory * t.look + (1 - s.look_memory) * new
        t.look = _unit(mixed)
        if crowded:
            return
        near_gate = self._near_gate(t)
        if not near_gate:
            t.clear_look = _unit(new)
        if t.anchor_n < s.anchor_looks and not near_gate:
            t.anchor = _unit(new if t.anchor is None else t.anchor * t.anchor_n + new)
            t.anchor_n += 1
        # a short memory: what the person looks like now, not since the track began
        kept = min(t.recent_n, 2 * s.recent_looks)
        t.recent = _unit(new if t.recent is None else t.recent * kept + new)
        t.recent_n += 1

    def _near_gate(self, t: _StoreTrack) -> bool:
        """Gate markings on the floor colour the boxes of people on them: no anchor there."""
        m = self.settings.anchor_gate_m
        return any(_segment_distance(t.pos, a, b) <= m for a, b in self._entry + self._exit)

    # --- swap repair ---

    def _repair_swaps(self, time_s: float) -> None:
        """Give back the ids of two tracks that took each other's person when they met.

        Two shoppers who pass shoulder to shoulder (one box for both, a few
        frames) can leave each track on the other person; positions alone
        cannot tell, and the running look soon learns the new person. Each
        track therefore keeps an anchor look (its first clear looks away from
        the gates, then frozen) and a recent one (clear looks since it was
        last crowded). When two tracks that met lately are both seen and
        clear again, and their anchors fit each other's recent looks better,
        by ``swap_margin``, than their own, the ids (and anchors) change
        places; each track stays on the person it is following.
        """
        s = self.settings
        live = [t for t in self._tracks if t.confirmed]
        for i, a in enumerate(live):
            for b in live[i + 1 :]:
                if float(np.hypot(*(a.pos - b.pos))) <= s.encounter_m:
                    a.met_s[b.number] = b.met_s[a.number] = time_s
                elif time_s - a.met_s.get(b.number, -math.inf) <= s.encounter_s and self._swapped(
                    a, b, time_s
                ):
                    self._swap_identity(a, b)

    def _swapped(self, a: _StoreTrack, b: _StoreTrack, time_s: float) -> bool:
        s = self.settings
        for t in (a, b):
            if t.anchor_n < s.anchor_looks or t.recent_n < s.recent_looks:
                return False
            if t.last_seen_s < time_s:
                return False
        keep = look_distance(a.anchor, a.recent) + look_distance(b.anchor, b.recent)
        swap = look_distance(a.anchor, b.recent) + look_distance(b.anchor, a.recent)
        return swap + s.swap_margin < keep

    def _swap_identity(self, a: _StoreTrack, b: _StoreTrack) -> None:
        log.info("store tracks %s and %s swapped people: ids given back", a.number, b.number)
        na, nb = a.number, b.number
        for name in ("number", "anchor", "anchor_n", "born_s", "born_at_entry", "met_s"):
            va, vb = getattr(a, name), getattr(b, name)
            setattr(a, name, vb)
            setattr(b, name, va)
        for key, owner in self._owner.items():  # camera ids stay with the person they follow
            if owner in (na, nb):
                self._owner[key] = nb if owner == na else na
        for t in self._tracks:
            t.near_since_s.pop(na, None)
            t.near_since_s.pop(nb, None)

    # --- association ---

    def _gate(self, t: _StoreTrack, time_s: float) -> float:
        s = self.settings
        return min(s.gate_m + s.coast_gate_growth_m_per_s * (time_s - t.last_seen_s), s.max_gate_m)

    def _associate(
        self, observations: Sequence[CameraObservation], time_s: float
    ) -> dict[int, list[CameraObservation]]:
        """Pair each camera's observations with store tracks; leftovers start new tracks.

        One exact assignment per camera (so a track takes at most one
        observation per camera). A camera-local id already bound to a track
        pays ``sticky_bonus_m`` less to stay with it, which keeps store ids
        through hand-offs, yet lets a camera tracker's own id swap (two people
        crossing in one view) be undone by the floor distances.
        """
        assigned: dict[int, list[CameraObservation]] = {}
        born: list[_StoreTrack] = []
        for cam in sorted({o.camera_id for o in observations}):
            obs = sorted((o for o in observations if o.camera_id == cam), key=lambda o: o.key)
            rest = self._pair(obs, self._tracks, time_s, assigned)
            rest = self._pair(rest, born, time_s, assigned)
            self._start_tracks(rest, time_s, assigned, born)
        for o, left, best in self._split_off(assigned):
            free = [t for t in self._tracks if self._starved(t, o, best, time_s, assigned)]
            if self._pair([o], free, time_s, assigned):  # no other home: one person after all
                assigned[left].append(o)
                self._owner[o.key] = left
        self._tracks.extend(born)
        return assigned

    def _starved(
        self,
        t: _StoreTrack,
        o: CameraObservation,
        best: CameraObservation,
        time_s: float,
        assigned: dict[int, list[CameraObservation]],
    ) -> bool:
        """Could ``o`` be the person of ``t``, a shopper's track that lost every camera now?

        Only a track born at the entry (a shopper's, not a ghost of a stretched
        box), seen within ``report_coast_s``, and under half as far from ``o``
        as the kept observation is. Looser homes were measured worse on busy
        seed 101 (receipts 0.800 -> 0.650 giving ``o`` to any track in its
        gate, 0.717 to any unfed one): most far observations are one person
        whom two cameras place apart, and a neighbour they are given to is
        dragged off its own shopper.
        """
        if not t.confirmed or not t.born_at_entry or assigned.get(t.number):
            return False
        if time_s - t.last_seen_s > self.settings.report_coast_s:
            return False
        here = float(np.hypot(o.x_m - best.x_m, o.y_m - best.y_m))
        return float(np.hypot(o.x_m - t.pos[0], o.y_m - t.pos[1])) < here / 2

    def _start_tracks(
        self,
        obs: list[CameraObservation],
        time_s: float,
        assigned: dict[int, list[CameraObservation]],
        born: list[_StoreTrack],
    ) -> None:
        for o in obs:
            t = self._new_track(o, time_s)
            born.append(t)
            assigned[t.number] = [o]
            self._owner[o.key] = t.number

    def _split_off(
        self, assigned: dict[int, list[CameraObservation]]
    ) -> list[tuple[CameraObservation, int, CameraObservation]]:
        """Take from each track the observations that cannot be the same person as its best.

        Two cameras can each follow a different one of two shoppers standing
        close while both camera-local ids are bound to one store track: the
        track then sits between them and the other shopper's track dies. An
        observation further than ``split_m`` (and ``split_sigmas`` combined
        sigmas) from the one nearest the track's prediction is released, to
        pair with a starved shopper's track (:meth:`_starved`); with none, it
        stays (one person whom two cameras place apart: a reaching arm
        stretches a box). Returns each released observation, the number of
        the track it left and the observation that track kept.
        """
        s = self.settings
        released: list[tuple[CameraObservation, int, CameraObservation]] = []
        if s.split_m <= 0:
            return released
        for t in self._tracks:
            obs = assigned.get(t.number, [])
            if len(obs) < 2:
                continue
            best = min(obs, key=lambda o: float(np.hypot(o.x_m - t.pos[0], o.y_m - t.pos[1])))
            keep = []
            for o in obs:
                d = float(np.hypot(o.x_m - best.x_m, o.y_m - best.y_m))
                if d > max(s.split_m, s.split_sigmas * math.hypot(o.sigma_m, best.sigma_m)):
                    released.append((o, t.number, best))
                    self._owner.pop(o.key, None)
                else:
                    keep.append(o)
            assigned[t.number] = keep
        return released

    def _pair(
        self,
        obs: list[CameraObservation],
        tracks: list[_StoreTrack],
        time_s: float,
        assigned: dict[int, list[CameraObservation]],
    ) -> list[CameraObservation]:
        if not obs or not tracks:
            return obs
        s = self.settings
        pts = np.array([[o.x_m, o.y_m] for o in obs])
        pos = np.array([t.pos for t in tracks])
        dist = np.linalg.norm(pos[:, None, :] - pts[None, :, :], axis=2)
        bound = np.array(
            [[self._owner.get(o.key) == t.number for o in obs] for t in tracks], dtype=bool
        )
        gates = np.array([self._gate(t, time_s) for t in tracks])[:, None]
        allowed = (dist <= gates) | (bound & (dist <= max(s.sticky_gate_m, s.gate_m)))
        looks = np.array([[look_distance(t.look, o.look) for o in obs] for t in tracks])
        cost = np.where(
            allowed, dist + np.where(bound, 0.0, s.sticky_bonus_m) + s.look_weight_m * looks, np.nan
        )
        top = max(s.max_gate_m, s.sticky_gate_m) + s.sticky_bonus_m + s.look_weight_m
        rows, cols = match_capped(cost, top)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            t, o = tracks[r], obs[c]
            assigned.setdefault(t.number, []).append(o)
            self._owner[o.key] = t.number
        used = set(cols.tolist())
        return [o for i, o in enumerate(obs) if i not in used]

    def _new_track(self, o: CameraObservation, time_s: float) -> _StoreTrack:
        s = self.settings
        x = np.array([o.x_m, o.y_m, 0.0, 0.0])
        p = np.diag([o.sigma_m**2] * 2 + [s.init_speed_sigma_m_s**2] * 2)
        near_entry = any(_segment_distance(x[:2], a, b) <= s.entry_radius_m for a, b in self._entry)
        t = _StoreTrack(self._next, x, p, time_s, time_s, near_entry, confirmed=s.confirm_hits <= 1)
        t.look = o.look
        self._next += 1
        return t

    # --- endings ---

    def _merge(self, time_s: float) -> list[str]:
        """Two tracks on top of each other, never seen apart by one camera, become one."""
        s = self.settings
        ended: list[str] = []
        gone: set[int] = set()
        tracks = sorted(self._tracks, key=lambda t: t.number)
        for i, a in enumerate(tracks):
            for b in tracks[i + 1 :]:
                if a.number in gone or b.number in gone:
                    continue
                close = float(np.hypot(*(a.pos - b.pos))) < s.merge_m
                apart = bool(set(a.cameras) & set(b.cameras))  # one camera sees two people
                if not close or apart:
                    a.near_since_s.pop(b.number, None)
                    continue
                since = a.near_since_s.setdefault(b.number, time_s)
                if time_s - since >= s.merge_s:
                    gone.add(b.number)
                    a.born_at_entry = a.born_at_entry or (b.born_at_entry and not a.confirmed)
                    a.confirmed = a.confirmed or b.confirmed
                    for key, owner in list(self._owner.items()):
                        if owner == b.number:
                            self._owner[key] = a.number
                    if b.confirmed:
                        ended.append(self.track_name(b.number))
                    log.info("store track %s merged into %s", b.number, a.number)
        self._tracks = [t for t in self._tracks if t.number not in gone]
        return ended

    def _retire(self, time_s: float) -> list[str]:
        s = self.settings
        ended: list[str] = []
        keep: list[_StoreTrack] = []
        for t in self._tracks:
            unseen = time_s - t.last_seen_s
            near_exit = any(
                _segment_distance(t.pos, a, b) <= s.exit_radius_m for a, b in self._exit
            )
            off_floor = not (
                -1.0 <= t.pos[0] <= self.store.floor.width_m + 1.0
                and -1.0 <= t.pos[1] <= self.store.floor.depth_m + 1.0
            )
            gone = (
                (not t.confirmed and unseen > 0)
                or unseen > s.max_coast_s
                or (near_exit and unseen > s.exit_coast_s)
                or off_floor
            )
            if not gone:
                keep.append(t)
                continue
            if t.confirmed:
                ended.append(self.track_name(t.number))
                if not near_exit and not off_floor and t.look is not None:
                    self._lost.append(t)
            for key in [k for k, owner in self._owner.items() if owner == t.number]:
                del self._owner[key]
        self._tracks = keep
        self._lost = [t for t in self._lost if time_s - t.last_seen_s <= s.revive_s]
        return ended

    def _revive(self, t: _StoreTrack, time_s: float) -> None:
        """A new track away from the entry continues a lost one that looks like it: same id.

        The cameras lose a shopper for longer than ``max_coast_s`` when two
        bodies merge into one box or in a blind corner; the person who
        reappears is then a new track. If a track lost lately, within walking
        reach, has a look within ``revive_look`` of the new one, the new track
        takes its id (and identity look), so the brain sees one shopper.
        """
        s = self.settings
        if s.revive_s <= 0 or t.born_at_entry or t.look is None:
            return
        lost = self._lost_match(t, t.look, t.born_s, anchored_only=False)
        if lost is not None:
            self._adopt(t, lost)

    def _reclaim(self, time_s: float) -> list[str]:
        """Tracks on the wrong person take back a lost identity that fits; ids they drop end.

        When shopper A's track dies in a crowd, B's track can slide onto A
        while B gets a new track: not a swap of two live tracks. An anchored
        track whose recent look no longer fits its anchor but fits a lost
        track's (within ``revive_look``, better by ``swap_margin``) takes that
        identity; the identity it held is then lost in turn, for a young track
        (one still learning its anchor) that looks like it to take back.
        """
        s = self.settings
        if s.revive_s <= 0:
            return []
        ended: list[str] = []
        for t in [t for t in self._tracks if t.confirmed and t.last_seen_s == time_s]:
            if t.recent is None or t.recent_n < s.recent_looks:
                continue
            if t.anchor_n < s.anchor_looks:  # young: may take back a lost identity
                lost = self._lost_match(t, t.recent, time_s)
                if lost is not None:
                    ended.append(self.track_name(t.number))
                    self._adopt(t, lost)
                continue
            own = look_distance(t.anchor, t.recent)
            if own <= s.revive_look:
                continue
            lost = self._lost_match(t, t.recent, time_s)
            if lost is None or own - look_distance(lost.anchor, t.recent) < s.swap_margin:
                continue
            dropped = _StoreTrack(
                t.number, t.x.copy(), t.P.copy(), t.born_s, time_s, t.born_at_entry
            )
            dropped.anchor, dropped.anchor_n, dropped.look = t.anchor, t.anchor_n, t.anchor
            ended.append(self.track_name(t.number))
            self._adopt(t, lost)
            self._lost.append(dropped)
        return ended

    def _lost_match(
        self, t: _StoreTrack, look: np.ndarray, since_s: float, *, anchored_only: bool = True
    ) -> _StoreTrack | None:
        """The lost track nearest in look to ``look`` (within ``revive_look``) that could
        have walked to ``t`` since ``since_s``; ``anchored_only``: only finished anchors."""
        s = self.settings
        best: tuple[float, _StoreTrack] | None = None
        for lost in self._lost:
            if anchored_only and (lost.anchor is None or lost.anchor_n < s.anchor_looks):
                continue
            reach = s.gate_m + s.revive_speed_m_s * max(since_s - lost.last_seen_s, 0.0)
            if float(np.hypot(*(t.pos - lost.pos))) > reach:
                continue
            d = look_distance(lost.anchor if lost.anchor is not None else lost.look, look)
            if d <= s.revive_look and (best is None or d < best[0]):
                best = (d, lost)
        return None if best is None else best[1]

    def _adopt(self, t: _StoreTrack, lost: _StoreTrack) -> None:
        """``t`` continues ``lost``: its id, birth and identity look."""
        self._lost.remove(lost)
        log.info("store track %s continues lost track %s", t.number, lost.number)
        for key, owner in self._owner.items():
            if owner == t.number:
                self._owner[key] = lost.number
        t.number, t.born_s, t.born_at_entry = lost.number, lost.born_s, lost.born_at_entry
        t.anchor, t.anchor_n, t.met_s = lost.anchor, lost.anchor_n, lost.met_s

    def _report(self, t: _StoreTrack, time_s: float) -> FloorTrack:
        return FloorTrack(
            track_id=self.track_name(t.number),
            x_m=float(t.x[0]),
            y_m=float(t.x[1]),
            vx_m_s=float(t.x[2]),
            vy_m_s=float(t.x[3]),
            sigma_m=float(math.sqrt(max(t.P[0, 0], t.P[1, 1]))),
            born_at_entry=t.born_at_entry,
            unseen_s=float(time_s - t.last_seen_s),
            cameras=t.cameras,
            look=t.clear_look if t.last_seen_s == time_s else None,
        )
