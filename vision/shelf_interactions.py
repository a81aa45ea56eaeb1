"""Shelf interactions: hands seen by a shelf camera become pick/put/touch episodes.

Per shelf camera, each frame's detections (class ``hand``: an empty hand, and
class ``hand_holding``: a hand and the package in it, one box) go through:

1. a hand tracker (``vision.tracking.Tracker``) over both classes, so one hand
   is one id over its whole reach, whatever it holds;
2. the holding flag of each tracked hand: whether its box this frame is a
   ``hand_holding`` detection (the package's crop is that box's top part);
3. the plate zone each hand is in: the plate whose zone (its front area in the
   image, from the store geometry) overlaps the hand box most;
4. an episode per hand: it opens when the hand first enters a plate zone and
   closes when the hand has been outside every zone for ``exit_frames``
   frames, or its track is gone.

An episode is decided by comparing what the hand held going in (the frames up
to and including its first in-zone frame) with what it held coming out (its
last in-zone frame and after): empty in and holding out is a pick, holding in
and empty out a put, anything else a touch (whose SKU, on a plate of several, is
the facing the hand was over: the scale knows whether a unit left). The SKU is the classifier's
average over the package crops of the deciding phase, times where on the plate
the hand reached (a shared plate's facings); the plate is the zone
the hand spent most frames in; the arm's floor position is where the hand
box's centre ray meets the gondola face, moved into the aisle. Event time
only: frames carry their ``time_s`` and nothing reads a clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from iot.cameras import camera_rotation, world_to_pixel
from iot.facings import facing_spans_m
from iot.payloads import Interaction
from iot.store import Camera, Store
from vision.detect import box_iou, nms
from vision.detections import Detections
from vision.sku import SkuGuess
from vision.tracking import Tracker, TrackerSettings

__all__ = [
    "HandEpisode",
    "InteractionSettings",
    "ShelfInteractionTracker",
    "decide_episode",
    "face_point_m",
    "facing_columns_px",
    "merge_hand_boxes",
]

log = logging.getLogger(__name__)

ZoneBoxes = Mapping[str, tuple[float, float, float, float]]
Classify = Callable[[np.ndarray, list[str] | None], SkuGuess]


class InteractionSettings(BaseModel):
    """Thresholds of the shelf interaction service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hand_class_id: int = Field(default=0, ge=0, description="Detector class id of an empty hand.")
    holding_class_id: int = Field(
        default=1,
        ge=0,
        description="Detector class id of a hand holding a package (hand and package, one box).",
    )
    holding_iou: float = Field(
        default=0.4,
        gt=0,
        le=1,
        description="A tracked hand is holding when a hand_holding box overlaps it this much.",
    )
    min_zone_overlap: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="Share of the hand box that must lie in a plate zone to count as inside it.",
    )
    exit_frames: int = Field(
        default=2, ge=1, le=30, description="Frames outside every zone that close an episode."
    )
    phase_frames: int = Field(
        default=3,
        ge=1,
        le=30,
        description="Frames at each end of an episode that say what the hand held going in/out.",
    )
    holding_share: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="Share of a phase's frames with a product in hand to call the hand holding.",
    )
    min_zone_frames: int = Field(
        default=2,
        ge=1,
        le=30,
        description="A touch shorter than this many frames in a zone is a hand passing by.",
    )
    crop_top_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of a held product's box, from its top, given to the SKU classifier "
        "(the hand grips the rest); the gallery must be cut the same way.",
    )
    position_floor: float = Field(
        default=0.05,
        gt=0,
        lt=1,
        description="Smallest position likelihood of a SKU the hand was never over (a put "
        "back in the wrong place, a hand zone straddling two facings).",
    )
    appearance_floor: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="Smallest appearance likelihood of a SKU: the classifier sees a small, "
        "hand-covered crop, so its vote may tip a tie of positions but not overrule a clear one.",
    )
    aisle_offset_m: float = Field(
        default=0.35,
        ge=0,
        le=2,
        description="How far into the aisle from the gondola face the arm's root is taken to be.",
    )
    tracker: TrackerSettings = Field(
        default_factory=lambda: TrackerSettings(
            high_score=0.25, new_track_score=0.25, min_hits=1, max_age_frames=5
        ),
        description="Hand tracker settings (a hand moves fast and close: short memory).",
    )


@dataclass
class _Frame:
    time_s: float
    zone: str | None
    holding: bool
    hand_xyxy: np.ndarray
    guess: SkuGuess | None
    facing: str | None = None  # the SKU whose facings the hand was over (shared plates)


@dataclass
class HandEpisode:
    """One hand's visit to the shelf: every frame from the hand's first sighting."""

    camera_id: str
    hand_id: int
    frames: list[_Frame] = field(default_factory=list)
    entered: bool = False
    frames_outside: int = 0


Facings = Mapping[str, list[tuple[str, float, float]]]


def facing_columns_px(store: Store, camera: Camera) -> dict[str, list[tuple[str, float, float]]]:
    """Per plate on the camera's gondola: (sku, u_from_px, u_to_px) of each SKU's facings.

    The planogram's layout (``iot.facings``) projected into the image at the
    height a hand reaches to (10 cm above the plate).
    """
    out: dict[str, list[tuple[str, float, float]]] = {}
    for gondola, shelf, plate in store.iter_plates():
        if gondola.id != camera.gondola:
            continue
        face_y = store.plate_front_m(plate.id)[0][1]
        z = shelf.height_m + 0.1
        columns = []
        for sku, x0, x1 in facing_spans_m(store, plate.id):
            pts = np.array([[x0, face_y, z], [x1, face_y, z]])
            uv, ok = world_to_pixel(camera, pts)
            if ok.all():
                u0, u1 = sorted((float(uv[0, 0]), float(uv[1, 0])))
                columns.append((sku, u0, u1))
        out[plate.id] = columns
    return out


def face_point_m(camera: Camera, u: float, v: float, face_y_m: float) -> tuple[float, float]:
    """Floor (x, height) where pixel (u, v)'s ray meets the vertical plane ``y = face_y_m``."""
    ray_cam = np.array(
        [
            (u - camera.width_px / 2) / camera.focal_px,
            (v - camera.height_px / 2) / camera.focal_px,
            1,
        ]
    )
    ray = camera_rotation(camera) @ ray_cam
    origin = np.asarray(camera.position_m, dtype=float)
    if abs(ray[1]) < 1e-9:
        return float(origin[0]), float(origin[2])
    t = (face_y_m - origin[1]) / ray[1]
    hit = origin + ray * t
    return float(hit[0]), float(hit[2])


def _share(phase: list[_Frame]) -> float:
    return sum(f.holding for f in phase) / len(phase) if phase else 0.0


def _appearance(phase: list[_Frame]) -> dict[str, float]:
    """The classifier's mean probabilities over the phase's held-product crops."""
    guesses = [f.guess for f in phase if f.holding and f.guess is not None]
    total: dict[str, float] = {}
    for g in guesses:
        for sku, p in g.probabilities.items():
            total[sku] = total.get(sku, 0.0) + p / len(guesses)
    return total


def _position(frames: list[_Frame], plate_skus: list[str], floor: float) -> dict[str, float]:
    """How often the hand was over each SKU's facings while in the plate's zone (smoothed)."""
    if len(plate_skus) <= 1:
        return {sku: 1.0 for sku in plate_skus}
    counts = {sku: 0.0 for sku in plate_skus}
    for f in frames:
        if f.facing in counts:
            counts[f.facing] += 1.0
    n = sum(counts.values())
    if n == 0:
        return {sku: 1.0 / len(plate_skus) for sku in plate_skus}
    return {sku: max(c / n, floor) for sku, c in counts.items()}


def _which_sku(
    phase: list[_Frame],
    at_plate: list[_Frame],
    plate_skus: list[str],
    *,
    action: str,
    floor: float,
    look_floor: float,
) -> tuple[str | None, float]:
    """Where the hand was (facings) times what it held (appearance), normalised.

    A pick takes what the plate stocks, so only its SKUs compete (a stray unit
    left there is the scale's business). A put may return anything, so the
    classifier's best guesses compete too. Appearance is the weaker cue on
    small, hand-covered crops: it is clipped to [look_floor, 1] so that it
    breaks ties of position rather than overruling it.
    """
    looks = _appearance(phase)
    where = _position(at_plate, plate_skus, floor)
    if action == "pick" and plate_skus:
        candidates = set(plate_skus)
    else:
        candidates = set(where) | set(sorted(looks, key=lambda k: -looks[k])[:3])
    if not candidates:
        return None, 0.0
    in_play = {k: v for k, v in looks.items() if k in candidates}
    norm = sum(in_play.values())
    score = {
        sku: where.get(sku, floor)
        * (max(in_play.get(sku, 0.0) / norm, look_floor) if norm > 0 else 1.0)
        for sku in sorted(candidates)
    }
    total = sum(score.values())
    sku = max(sorted(score), key=lambda k: score[k])
    return sku, float(score[sku] / total)


def _reached_for(
    at_plate: list[_Frame], plate_skus: list[str], *, floor: float
) -> tuple[str | None, float]:
    """A touch's SKU: the facing the hand was over, when the plate stocks several.

    The detector can miss the package in a hand (small, half hidden, blurred),
    so a real pick may come out as a touch. The scale still knows a unit left;
    what it cannot tell on a shared plate is which of the equal-weight SKUs.
    Where the hand reached answers that without the holding frames. A plate
    of one SKU needs no answer (the weight has it), so none is given.
    """
    if len(plate_skus) <= 1:
        return None, 0.0
    where = _position(at_plate, plate_skus, floor)
    total = sum(where.values())
    sku = max(sorted(where), key=lambda k: where[k])
    return sku, float(where[sku] / total)


def decide_episode(
    episode: HandEpisode,
    settings: InteractionSettings,
    plate_skus: Mapping[str, list[str]] | None = None,
) -> tuple[str, str | None, float, float, str] | None:
    """(action, sku, confidence, sku_confidence, plate) of an episode, None if never inside.

    ``plate_skus``: the SKUs each plate stocks (planogram order); with several
    on a plate, where the hand reached says which (``_Frame.facing``).
    """
    inside = [i for i, f in enumerate(episode.frames) if f.zone is not None]
    if not inside:
        return None
    k = settings.phase_frames
    first, last = inside[0], inside[-1]
    going_in = episode.frames[max(0, first - k + 1) : first + 1]
    coming_out = episode.frames[last : last + k]
    held_in, held_out = _share(going_in), _share(coming_out)
    holding_in, holding_out = held_in >= settings.holding_share, held_out >= settings.holding_share
    if holding_out and not holding_in:
        action, phase = "pick", coming_out
    elif holding_in and not holding_out:
        action, phase = "put", going_in
    else:
        action, phase = "touch", []
    confidence = abs(held_out - held_in) if action != "touch" else 1.0 - abs(held_out - held_in)
    zones = [episode.frames[i].zone for i in inside]
    plate = max(sorted(set(zones), key=str), key=zones.count)
    assert plate is not None
    if action == "touch" and len(inside) < settings.min_zone_frames:
        return None  # a hand passing over the zone, not an interaction
    at_plate = [episode.frames[i] for i in inside if episode.frames[i].zone == plate]
    skus = list((plate_skus or {}).get(plate, []))
    if action != "touch":
        sku, sku_conf = _which_sku(
            phase,
            at_plate,
            skus,
            action=action,
            floor=settings.position_floor,
            look_floor=settings.appearance_floor,
        )
    else:
        sku, sku_conf = _reached_for(at_plate, skus, floor=settings.position_floor)
    return action, sku, round(float(confidence), 4), round(sku_conf, 4), plate


def merge_hand_boxes(dets: Detections, settings: InteractionSettings) -> Detections:
    """One box per hand, labelled by whichever class the detector scored higher there.

    An unsure detector often returns both a ``hand`` and a ``hand_holding``
    box for one hand, each at a middling score. Tracked as two hands they
    would make two episodes, and "a holding box overlaps" would call every
    such hand holding. So boxes of both classes are suppressed together
    (greedy, IoU above ``holding_iou``); each kept box carries the best score
    of the cluster and the class of its best-scoring member.
    """
    s = settings
    mine = (dets.class_id == s.hand_class_id) | (dets.class_id == s.holding_class_id)
    xyxy, score, cls = dets.xyxy[mine], dets.score[mine], dets.class_id[mine]
    keep = nms(xyxy, score, s.holding_iou)
    return Detections(xyxy[keep], score[keep], cls[keep])


class ShelfInteractionTracker:
    """One shelf camera's detections in, ``Interaction`` events out."""

    def __init__(
        self,
        store: Store,
        camera: Camera,
        zones: ZoneBoxes,
        classify: Classify | None,
        settings: InteractionSettings | None = None,
        *,
        facings: Facings | None = None,
    ) -> None:
        if camera.kind != "shelf" or camera.gondola is None:
            raise ValueError(f"camera {camera.id!r} is not a shelf camera watching a gondola")
        if not zones:
            raise ValueError(f"camera {camera.id!r} sees no plate zone; check its pose")
        self.store = store
        self.camera = camera
        self.zones = {p: np.asarray(b, dtype=float) for p, b in zones.items()}
        self.classify = classify
        self.settings = settings or InteractionSettings()
        self.facings = dict(facings) if facings is not None else facing_columns_px(store, camera)
        self.plate_skus = {p: [e.sku for e in store.skus_on_plate(p)] for p in self.zones}
        self.hands = Tracker(self.settings.tracker, frame_rate_hz=camera.fps)
        self.episodes: dict[int, HandEpisode] = {}
        self.emitted = 0

    def process(self, time_s: float, image: np.ndarray, dets: Detections) -> list[Interaction]:
        """One frame; returns the episodes that closed with it."""
        s = self.settings
        hands = merge_hand_boxes(dets, s)
        holding = hands.xyxy[hands.class_id == s.holding_class_id]
        tracked = self.hands.update(hands)
        seen: set[int] = set()
        for track in tracked:
            if track.frames_since_hit > 0:
                continue  # coasting: no observation to learn from this frame
            seen.add(track.track_id)
            self._observe(track.track_id, time_s, image, track.xyxy, holding)
        done = []
        for hand_id in list(self.episodes):
            ep = self.episodes[hand_id]
            gone = hand_id not in {t.track_id for t in tracked}
            if gone or (ep.entered and ep.frames_outside >= s.exit_frames):
                done.append(self.episodes.pop(hand_id))
            elif hand_id not in seen and ep.entered:
                ep.frames_outside += 1
        return [ev for ep in done if (ev := self._close(ep)) is not None]

    def flush(self) -> list[Interaction]:
        """Close every open episode (end of a stream)."""
        done, self.episodes = list(self.episodes.values()), {}
        return [ev for ep in done if (ev := self._close(ep)) is not None]

    # ------------------------------------------------------------ internals

    def _zone_of(self, box: np.ndarray) -> str | None:
        area = max(float((box[2] - box[0]) * (box[3] - box[1])), 1e-6)
        best, best_share = None, self.settings.min_zone_overlap
        for plate, z in self.zones.items():
            w = min(box[2], z[2]) - max(box[0], z[0])
            h = min(box[3], z[3]) - max(box[1], z[1])
            share = max(w, 0.0) * max(h, 0.0) / area
            if share >= best_share:
                best, best_share = plate, share
        return best

    def _facing_of(self, plate: str, hand: np.ndarray) -> str | None:
        columns = self.facings.get(plate, [])
        if len(columns) <= 1:
            return columns[0][0] if columns else None
        u = float(hand[0] + hand[2]) / 2

        def off(column: tuple[str, float, float]) -> float:
            return max(column[1] - u, 0.0, u - column[2])  # 0 inside the column

        return min(columns, key=off)[0]

    def _held_product(self, hand: np.ndarray, holding: np.ndarray) -> np.ndarray | None:
        """The hand_holding box that is this hand this frame, if any."""
        if len(holding) == 0:
            return None
        ious = box_iou(hand[None, :].astype(np.float32), holding.astype(np.float32))[0]
        best = int(np.argmax(ious))
        if ious[best] < self.settings.holding_iou:
            return None
        return np.asarray(holding[best], dtype=float)

    def _crop_guess(self, image: np.ndarray, box: np.ndarray, zone: str | None) -> SkuGuess | None:
        if self.classify is None:
            return None
        h, w = image.shape[:2]
        top = box[1] + (box[3] - box[1]) * self.settings.crop_top_share
        x0, y0 = int(max(0, np.floor(box[0]))), int(max(0, np.floor(box[1])))
        x1, y1 = int(min(w, np.ceil(box[2]))), int(min(h, np.ceil(top)))
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        return self.classify(image[y0:y1, x0:x1], None)

    def _observe(
        self, hand_id: int, time_s: float, image: np.ndarray, box: np.ndarray, holding: np.ndarray
    ) -> None:
        ep = self.episodes.setdefault(hand_id, HandEpisode(self.camera.id, hand_id))
        zone = self._zone_of(box)
        product = self._held_product(box, holding)
        guess = self._crop_guess(image, product, zone) if product is not None else None
        facing = self._facing_of(zone, box) if zone is not None else None
        ep.frames.append(_Frame(time_s, zone, product is not None, box.copy(), guess, facing))
        if zone is not None:
            ep.entered = True
            ep.frames_outside = 0
        elif ep.entered:
            ep.frames_outside += 1

    def _close(self, ep: HandEpisode) -> Interaction | None:
        decided = decide_episode(ep, self.settings, self.plate_skus)
        if decided is None:
            return None
        action, sku, confidence, sku_conf, plate = decided
        first_in = next(f for f in ep.frames if f.zone is not None)
        last_in = next(f for f in reversed(ep.frames) if f.zone is not None)
        hand_x, hand_y = self._arm_root(plate, first_in.hand_xyxy)
        self.emitted += 1
        return Interaction(
            id=f"{self.camera.id}:{ep.hand_id}:{round(first_in.time_s * 1000)}",
            event_time_s=last_in.time_s,
            device_id=self.camera.id,
            gondola_id=str(self.camera.gondola),
            plate_id=plate,
            action=action,  # type: ignore[arg-type]
            started_s=first_in.time_s,
            sku=sku,
            quantity=1 if sku is not None else 0,
            confidence=confidence,
            sku_confidence=sku_conf,
            hand_x_m=hand_x,
            hand_y_m=hand_y,
        )

    def _arm_root(self, plate: str, hand: np.ndarray) -> tuple[float, float]:
        (x0, y), (x1, _) = self.store.plate_front_m(plate)
        u, v = float((hand[0] + hand[2]) / 2), float((hand[1] + hand[3]) / 2)
        x, _ = face_point_m(self.camera, u, v, y)
        cam_y = self.camera.position_m[1]
        into_aisle = self.settings.aisle_offset_m if cam_y > y else -self.settings.aisle_offset_m
        return round(float(np.clip(x, x0 - 1.0, x1 + 1.0)), 3), round(y + into_aisle, 3)
