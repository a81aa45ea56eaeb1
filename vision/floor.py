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
from vision.floor_identity import IdentityKeeper
from vision.floor_settings import FloorSettings
from vision.floor_track import StoreTrack, segment_distance

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


class FloorFusion:
    """Store-level tracks from camera-local observations; call :meth:`update` per frame set."""

    def __init__(self, store: Store, settings: FloorSettings | None = None) -> None:
        self.store = store
        self.settings = settings or FloorSettings()
        self._tracks: list[StoreTrack] = []
        self._owner: dict[tuple[str, int], int] = {}  # camera-local key -> store track number
        self._next = 1
        self._time_s: float | None = None
        self._entry = [g.line_m for g in store.gates("entry")]
        self._exit = [g.line_m for g in store.gates("exit")]
        self.identity = IdentityKeeper(self.settings, self._entry + self._exit)

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
            self.identity.learn_look(t, [o.look for o in obs if o.look is not None], self._tracks)
            t.cameras = tuple(sorted(o.camera_id for o in obs))
            if obs:
                t.last_seen_s = time_s
                t.hits += 1
                if t.hits >= self.settings.confirm_hits and not t.confirmed:
                    t.confirmed = True
                    self.identity.revive(t, self._owner)
        renamed: list[str] = []
        if self.settings.anchor_looks:
            self.identity.repair_swaps(self._tracks, self._owner, time_s)
            dropped = self.identity.reclaim(self._tracks, self._owner, time_s)
            renamed = [self.track_name(n) for n in dropped]
        ended = renamed + self._merge(time_s) + self._retire(time_s)
        report = [
            self._report(t, time_s)
            for t in self._tracks
            if t.confirmed and time_s - t.last_seen_s <= self.settings.report_coast_s
        ]
        return FloorUpdate(time_s, report, ended)

    # --- Kalman filter in floor metres ---

    def _predict(self, t: StoreTrack, dt: float, time_s: float) -> None:
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
    def _correct(t: StoreTrack, o: CameraObservation) -> None:
        h = np.eye(2, 4)
        s = h @ t.P @ h.T + np.eye(2) * o.sigma_m**2
        gain = np.linalg.solve(s, h @ t.P).T
        t.x = t.x + gain @ (np.array([o.x_m, o.y_m]) - t.x[:2])
        t.P = (np.eye(4) - gain @ h) @ t.P

    # --- association ---

    def _gate(self, t: StoreTrack, time_s: float) -> float:
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
        born: list[StoreTrack] = []
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
        t: StoreTrack,
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
        born: list[StoreTrack],
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
        tracks: list[StoreTrack],
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

    def _new_track(self, o: CameraObservation, time_s: float) -> StoreTrack:
        s = self.settings
        x = np.array([o.x_m, o.y_m, 0.0, 0.0])
        p = np.diag([o.sigma_m**2] * 2 + [s.init_speed_sigma_m_s**2] * 2)
        near_entry = any(segment_distance(x[:2], a, b) <= s.entry_radius_m for a, b in self._entry)
        t = StoreTrack(self._next, x, p, time_s, time_s, near_entry, confirmed=s.confirm_hits <= 1)
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
                        # two tracks were two people until lately: if the survivor
                        # follows b's person, it may take b's identity back
                        self.identity.remember(b)
                    log.info("store track %s merged into %s", b.number, a.number)
        self._tracks = [t for t in self._tracks if t.number not in gone]
        return ended

    def _retire(self, time_s: float) -> list[str]:
        s = self.settings
        ended: list[str] = []
        keep: list[StoreTrack] = []
        for t in self._tracks:
            unseen = time_s - t.last_seen_s
            near_exit = any(segment_distance(t.pos, a, b) <= s.exit_radius_m for a, b in self._exit)
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
                if not near_exit and not off_floor:
                    self.identity.remember(t)
            for key in [k for k, owner in self._owner.items() if owner == t.number]:
                del self._owner[key]
        self._tracks = keep
        self.identity.forget_old(time_s)
        return ended

    def _report(self, t: StoreTrack, time_s: float) -> FloorTrack:
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
