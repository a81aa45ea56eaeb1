"""Evidence snapshots: heads blurred at capture, answered over a LocalTransport.

The ceiling frames are the twin's own renders (``sim.render``) of shoppers
standing still. The twin draws heads as plain ellipses, without eyes or mouth,
so the face-detector guard is checked on a synthetic drawn face instead.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from iot.bus import Inbox, LocalTransport, Message, publish
from iot.cameras import world_to_pixel
from iot.payloads import EvidenceRequest, Snapshot
from iot.store import Camera, Store, load_store
from iot.topics import TOPICS
from sim.render import CeilingRenderer, Frame
from sim.render_body import appearance_for, body_parts, pose_at
from sim.shoppers import VisitPlan
from vision.detections import Detections
from vision.snapshots import BlurSettings, EvidenceSnapshotter, SnapshotSettings, blur_people

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_767_603_600.0
STORE: Store = load_store(ROOT / "stores" / "demo.yaml")
CAMS = ["cam-ceil-01", "cam-ceil-02"]
PEOPLE = [(2.0, 3.5), (3.2, 2.6)]  # one under cam-ceil-01, one off to the side
HEAD_M = 1.65
SEED = 3
CASCADE = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")  # type: ignore[attr-defined]


def camera(cid: str) -> Camera:
    return next(c for c in STORE.devices.cameras if c.id == cid)


def standing(index: int, x: float, y: float) -> VisitPlan:
    return VisitPlan(
        index=index,
        token=f"v-{index:08x}",
        track_id=f"trk-{index + 1}",
        speed_m_s=1.0,
        scan_s=T0,
        exit_s=T0 + 60,
        track_start_s=T0,
        track_end_s=T0 + 60,
        times_s=np.array([T0, T0 + 60]),
        xs_m=np.array([x, x]),
        ys_m=np.array([y, y]),
    )


@pytest.fixture(scope="module")
def frames() -> dict[tuple[str, float], Frame]:
    """(camera, time) -> the rendered frame, for the two cameras at T0 + 1..4 s."""
    twin: Any = SimpleNamespace(visits=[standing(i, x, y) for i, (x, y) in enumerate(PEOPLE)])
    renderer = CeilingRenderer(STORE, [camera(c) for c in CAMS], seed=SEED)
    return {(c, T0 + k): renderer.render(twin, c, T0 + k) for k in (1, 2, 3, 4) for c in CAMS}


def head_px(cam: Camera, x: float, y: float) -> tuple[int, int]:
    uv, _ = world_to_pixel(cam, np.array([[x, y, HEAD_M]]))
    return round(float(uv[0, 0])), round(float(uv[0, 1]))


def edge_energy(image: np.ndarray, centre: tuple[int, int], half: int = 12) -> float:
    """Mean gradient magnitude in a window: a head's outline and features live here."""
    u, v = centre
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    win = (slice(v - half, v + half + 1), slice(u - half, u + half + 1))
    return float(np.hypot(gx[win], gy[win]).mean())


def far_from_people(frame: Frame, margin_px: float) -> np.ndarray:
    """Pixels farther than ``margin_px`` from every person box."""
    h, w = frame.image.shape[:2]
    far = np.ones((h, w), bool)
    for x0, y0, x1, y1 in frame.boxes_xyxy():
        far[
            max(0, int(y0 - margin_px)) : int(y1 + margin_px),
            max(0, int(x0 - margin_px)) : int(x1 + margin_px),
        ] = False
    return far


def detections(frame: Frame) -> Detections:
    boxes = frame.boxes_xyxy()
    return Detections(boxes, np.ones(len(boxes), np.float32), np.zeros(len(boxes), np.int32))


def drawn_face(image: np.ndarray, centre: tuple[int, int], size_px: int) -> None:
    """A cartoon frontal face (skin oval, brows, eyes, nose, mouth, hair), drawn in place."""
    cx, cy = centre
    s = size_px / 200

    def p(dx: float, dy: float) -> tuple[int, int]:
        return cx + round(dx * s), cy + round(dy * s)

    def ax(a: float, b: float) -> tuple[int, int]:
        return max(1, round(a * s)), max(1, round(b * s))

    cv2.ellipse(image, p(0, 0), ax(80, 105), 0, 0, 360, (150, 175, 215), -1)
    for dx in (-35, 35):
        cv2.ellipse(image, p(dx, -25), ax(18, 9), 0, 0, 360, (40, 40, 40), -1)
        cv2.line(image, p(dx - 20, -48), p(dx + 20, -48), (30, 30, 30), max(1, round(7 * s)))
    cv2.ellipse(image, p(0, 15), ax(8, 20), 0, 0, 360, (130, 155, 200), -1)
    cv2.ellipse(image, p(0, 55), ax(30, 9), 0, 0, 360, (60, 60, 120), -1)
    cv2.ellipse(image, p(0, -95), ax(85, 35), 0, 180, 360, (30, 40, 60), -1)
    roi = image[cy - size_px : cy + size_px, cx - size_px : cx + size_px]
    roi[:] = cv2.GaussianBlur(roi, (0, 0), 2.0 * s)


def faces(image: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return np.asarray(CASCADE.detectMultiScale(grey, 1.1, 3, minSize=(20, 20))).reshape(-1, 4)


# ------------------------------------------------------------------ blur_people


def test_ceiling_heads_lose_their_edges_and_the_rest_is_untouched(frames: dict) -> None:
    frame = frames[("cam-ceil-01", T0 + 2)]
    cam = camera("cam-ceil-01")
    assert len(frame.people) == 2  # both shoppers are in view
    out, regions = blur_people(
        frame.image, cam, frame.boxes_xyxy(), PEOPLE, settings=BlurSettings()
    )
    assert regions >= 4  # a head from each floor point and from each box
    for x, y in PEOPLE:
        centre = head_px(cam, x, y)
        before, after = edge_energy(frame.image, centre), edge_energy(out, centre)
        assert before > 8.0  # the raw head has an outline to lose
        assert after < 0.35 * before
    far = far_from_people(frame, margin_px=70)
    assert far.mean() > 0.6
    assert np.array_equal(out[far], frame.image[far])
    assert not np.array_equal(out, frame.image)


def head_mask(cam: Camera, index: int, x: float, y: float, t_s: float) -> np.ndarray:
    """The pixels of a rendered shopper's head and hair, from the twin's own body model."""
    pose = pose_at(STORE, standing(index, x, y), t_s)
    body = body_parts(pose, appearance_for(SEED, index))
    mask = np.zeros((cam.height_px, cam.width_px), np.uint8)
    for name, pts in zip(body.names, body.points_m, strict=True):
        if name in ("head", "hair"):
            uv, _ = world_to_pixel(cam, pts)
            cv2.fillConvexPoly(mask, cv2.convexHull(np.round(uv).astype(np.int32)), 255)
    return mask > 0


def blurred_area(
    cam: Camera, boxes: np.ndarray, points: list, settings: BlurSettings
) -> np.ndarray:
    """Which pixels blur_people replaces (on noise, every replaced pixel changes)."""
    noise = np.random.default_rng(0).integers(0, 255, (cam.height_px, cam.width_px, 3), np.uint8)
    out, _ = blur_people(noise, cam, boxes, points, settings=settings)
    return np.asarray((out != noise).any(axis=2))


@pytest.mark.parametrize("guard", ["floor points", "person boxes"])
def test_each_geometric_guard_alone_covers_every_head_pixel(frames: dict, guard: str) -> None:
    frame = frames[("cam-ceil-01", T0 + 2)]
    cam = camera("cam-ceil-01")
    boxes = frame.boxes_xyxy() if guard == "person boxes" else np.empty((0, 4))
    points = PEOPLE if guard == "floor points" else []
    area = blurred_area(cam, boxes, points, BlurSettings(face_detector=False))
    for i, (x, y) in enumerate(PEOPLE):
        head = head_mask(cam, i, x, y, T0 + 2)
        assert head.sum() > 100  # the head is in view, and not a speck
        assert area[head].mean() == 1.0
    assert area.mean() < 0.12  # heads, not the whole frame


def test_nothing_to_hide_changes_nothing(frames: dict) -> None:
    frame = frames[("cam-ceil-01", T0 + 2)]
    quiet = BlurSettings(face_detector=False)
    out, n = blur_people(frame.image, camera("cam-ceil-01"), np.empty((0, 4)), [], settings=quiet)
    assert n == 0 and np.array_equal(out, frame.image)


def test_face_detector_guard_hides_a_face_the_geometry_missed() -> None:
    image = np.full((480, 640, 3), 190, np.uint8)
    drawn_face(image, (320, 240), 160)
    assert len(faces(image)) == 1  # the cascade sees the drawn face before blurring
    cam = camera("cam-shelf-g01")
    none: list[tuple[float, float]] = []
    kept, n_off = blur_people(
        image, cam, np.empty((0, 4)), none, settings=BlurSettings(face_detector=False)
    )
    assert n_off == 0 and len(faces(kept)) == 1
    out, regions = blur_people(image, cam, np.empty((0, 4)), none, settings=BlurSettings())
    assert regions >= 1
    assert len(faces(out)) == 0
    assert np.array_equal(out[:, :150], image[:, :150])  # far from the face: untouched


def test_oblique_view_blurs_the_projected_head_of_a_floor_point() -> None:
    cam = camera("cam-shelf-g01")  # across the aisle from gondola g01, tilted 63 deg
    x, y = cam.position_m[0] + 0.3, cam.position_m[1] + 1.8
    centre = head_px(cam, x, y)
    assert 100 < centre[0] < 540 and 80 < centre[1] < 400  # the head is well inside the view
    image = np.full((cam.height_px, cam.width_px, 3), 170, np.uint8)
    drawn_face(image, centre, 90)
    assert len(faces(image)) == 1
    settings = BlurSettings(face_detector=False)
    out, regions = blur_people(image, cam, np.empty((0, 4)), [(x, y)], settings=settings)
    assert regions == 1
    assert len(faces(out)) == 0
    assert edge_energy(out, centre, 30) < 0.3 * edge_energy(image, centre, 30)


def test_upright_person_box_blurs_its_top_only() -> None:
    cam = camera("cam-shelf-g01")
    image = np.random.default_rng(5).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    box = np.array([[200.0, 100.0, 300.0, 400.0]])
    out, regions = blur_people(image, cam, box, [], settings=BlurSettings(face_detector=False))
    assert regions == 1
    assert (out[100:200, 200:300] != image[100:200, 200:300]).mean() > 0.9
    assert np.array_equal(out[220:], image[220:])


def test_settings_refuse_an_upside_down_head_band() -> None:
    with pytest.raises(ValueError, match="head_high_m"):
        BlurSettings(head_low_m=1.9, head_high_m=1.5)


# ------------------------------------------------------------------ the snapshotter


class Rig:
    """A snapshotter on a LocalTransport, fed the rendered frames, with the snapshots heard."""

    def __init__(self, out_dir: Path, frames: dict, settings: SnapshotSettings | None = None):
        self.bus = LocalTransport()
        self.frames = frames
        self.snap = EvidenceSnapshotter(
            STORE, self.bus, out_dir, now=lambda: T0 + 10, settings=settings
        )
        self.snap.start()
        self.heard: list[Snapshot] = []
        inbox = Inbox(self.bus, STORE.store_id, service_kind="ops", service_id="t", now=lambda: T0)
        inbox.on(TOPICS["snapshots"], self._heard)
        self.n = 0

    def _heard(self, msg: Message) -> None:
        assert isinstance(msg.payload, Snapshot)
        self.heard.append(msg.payload)

    def feed(self, t: float) -> None:
        step = {c: self.frames[(c, t)] for c in CAMS}
        self.snap.observe(
            t,
            {c: f.image for c, f in step.items()},
            {c: detections(f) for c, f in step.items()},
            PEOPLE,
        )

    def ask(self, at_s: float, **where: Any) -> list[Snapshot]:
        self.n += 1
        before = len(self.heard)
        req = EvidenceRequest(
            id=f"ev-{self.n}",
            event_time_s=at_s,
            device_id="shrink",
            case_id=f"case-{self.n}",
            at_s=at_s,
            **where,
        )
        publish(self.bus, STORE.store_id, req)
        return self.heard[before:]


def sees(cid: str, x: float, y: float) -> bool:
    cam = camera(cid)
    uv, ok = world_to_pixel(cam, np.array([[x, y, 0.0]]))
    return bool(ok[0]) and 0 <= uv[0, 0] < cam.width_px and 0 <= uv[0, 1] < cam.height_px


def test_request_is_answered_with_blurred_jpegs_from_cameras_that_see_it(
    tmp_path: Path, frames: dict
) -> None:
    rig = Rig(tmp_path, frames)
    for k in (1, 2, 3):
        rig.feed(T0 + k)
    x, y = PEOPLE[1]
    shots = rig.ask(T0 + 2.2, x_m=x, y_m=y)
    assert {s.camera_id for s in shots} == {c for c in CAMS if sees(c, x, y)}
    assert shots[0].camera_id == "cam-ceil-01"  # the point is nearer its image centre
    checked = 0
    for shot in shots:
        assert shot.frame_s == T0 + 2  # the kept frame nearest the moment
        assert shot.case_id == "case-1" and shot.regions_blurred >= 2
        path = Path(shot.image_path)
        assert path.parent == tmp_path and "case-1" in path.name and shot.camera_id in path.name
        written = cv2.imread(str(path))
        assert written is not None and written.shape == (480, 640, 3)
        raw = frames[(shot.camera_id, T0 + 2)]
        cam = camera(shot.camera_id)
        heads = [head_px(cam, px, py) for px, py in PEOPLE]
        inside = [(u, v) for u, v in heads if 15 <= u < 625 and 15 <= v < 465]
        checked += len(inside)
        for centre in inside:
            # never the raw frame: the head in the file has lost its outline
            assert edge_energy(written, centre) < 0.4 * edge_energy(raw.image, centre)
        far = far_from_people(raw, margin_px=70)
        diff = np.abs(written.astype(float) - raw.image.astype(float))[far]
        assert diff.mean() < 4.0  # away from people the picture is the scene, JPEG aside
    assert checked >= 2  # both heads in cam-ceil-01's file, at least
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        Path(s.image_path).name for s in shots
    )
    stats = rig.snap.stats()
    assert stats["snapshots"] == len(shots) and stats["requests"] == 1


def test_moments_not_held_are_counted_and_answered_with_nothing(
    tmp_path: Path, frames: dict
) -> None:
    rig = Rig(tmp_path, frames, SnapshotSettings(keep_s=1.5))
    for k in (1, 2, 3, 4):
        rig.feed(T0 + k)
    assert rig.snap.stats()["frames_held"] == 2 * len(CAMS)  # older frames were let go
    assert rig.ask(T0 + 1.0, x_m=3.2, y_m=2.6) == []  # evicted
    assert rig.ask(T0 + 30.0, x_m=3.2, y_m=2.6) == []  # far beyond what it holds
    assert rig.snap.stats()["not_held"] == 2 * len(CAMS)
    assert list(tmp_path.iterdir()) == []


def test_a_moment_just_ahead_is_answered_by_the_next_frame(tmp_path: Path, frames: dict) -> None:
    rig = Rig(tmp_path, frames)
    rig.feed(T0 + 1)
    rig.feed(T0 + 2)
    assert rig.ask(T0 + 2.7, x_m=2.0, y_m=3.5) == []
    assert rig.snap.stats()["pending"] > 0
    rig.feed(T0 + 3)
    assert rig.heard and {s.frame_s for s in rig.heard} == {T0 + 3}
    assert rig.snap.stats()["pending"] == 0


def test_a_plate_request_goes_to_its_gondola_shelf_camera(tmp_path: Path, frames: dict) -> None:
    rig = Rig(tmp_path, frames)
    rig.feed(T0 + 1)
    shelf_cam = camera("cam-shelf-g01")
    gray = np.full((shelf_cam.height_px, shelf_cam.width_px, 3), 128, np.uint8)
    rig.snap.observe(T0 + 1.05, {shelf_cam.id: gray}, {}, None)
    plate = next(
        p.id
        for g, s, p in STORE.iter_plates()
        if g.id == "g01" and s.side == "south" and p.offset_m > 1.0
    )
    shots = rig.ask(T0 + 1.0, plate_id=plate)
    assert shots[0].camera_id == shelf_cam.id
    assert all(s.camera_id in {shelf_cam.id, *CAMS} for s in shots)


def test_bad_frames_and_bad_requests_are_counted_not_raised(tmp_path: Path, frames: dict) -> None:
    rig = Rig(tmp_path, frames)
    rig.feed(T0 + 1)
    small = np.zeros((10, 10, 3), np.uint8)
    rig.snap.observe(T0 + 2, {"cam-ceil-01": small, "nope": small}, {}, [(float("nan"), 1.0)])
    rig.snap.observe(T0 + 2.5, {}, {}, [("a", "b")])  # type: ignore[list-item]
    rig.feed(T0 + 1)  # not after the last frame
    rig.bus.publish("smartstore/demo/ops/shrink/evidence", b"{broken", 1, False)
    stats = rig.snap.stats()
    assert stats["bad_frames"] == 2 and stats["late_frames"] == len(CAMS)
    assert stats["bad_floor_points"] == 1 and stats["dead_letters"] == 1
    assert rig.snap.stats()["frames_held"] == len(CAMS)
