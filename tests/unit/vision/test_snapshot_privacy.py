"""No unblurred frame is ever written: every image that reaches the disk left ``blur_people``.

Two guards: at run time, every image the snapshotter encodes is checked to
be (the very array) ``blur_people`` returned, over every answer path (a
ceiling view of a place, a shelf camera for a plate, a request that waits
for its frame); and in the source, the production rooms encode images in
exactly these places: the snapshotter's writer, the heatmap (which draws
person-seconds per floor cell, not a camera frame) and the re-id training
data tool (crops of the digital twin's rendered shoppers, never a camera's).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from iot.bus import LocalTransport, publish
from iot.payloads import EvidenceRequest
from iot.store import load_store
from vision import snapshots
from vision.snapshots import BlurSettings, EvidenceSnapshotter, SnapshotSettings

ROOT = Path(__file__).resolve().parents[3]
STORE = load_store(ROOT / "stores" / "demo.yaml")
T0 = 1.8e9
CAMS = ["cam-ceil-01", "cam-shelf-g01"]
ROOMS = ("iot", "vision", "checkout", "smartstore", "models")
ENCODERS = re.compile(r"\b(imwrite|imencode|VideoWriter|fromarray|tofile|savez\w*)\b")
ALLOWED = {
    ("vision/snapshots.py", "_write_jpeg"),  # after blur_people, checked above
    ("checkout/heatmap.py", "render_png"),  # person-seconds per floor cell
    ("smartstore/reid_data.py", "main"),  # training crops of the twin's rendered shoppers only
}


def frame(cid: str, k: int) -> np.ndarray:
    cam = next(c for c in STORE.devices.cameras if c.id == cid)
    rng = np.random.default_rng([k, len(cid)])
    return rng.integers(30, 220, (cam.height_px, cam.width_px, 3), dtype=np.uint8)


def test_every_image_written_is_a_blurred_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blurred: list[np.ndarray] = []
    encoded: list[np.ndarray] = []
    real_blur, real_encode = snapshots.blur_people, snapshots.cv2.imencode

    def blur(image: np.ndarray, *args: Any, **kwargs: Any) -> tuple[np.ndarray, int]:
        out, n = real_blur(image, *args, **kwargs)
        assert out is not image  # a copy, the raw frame untouched in memory
        blurred.append(out)
        return out, n

    def encode(ext: str, image: np.ndarray, *args: Any) -> Any:
        encoded.append(image)
        return real_encode(ext, image, *args)

    monkeypatch.setattr(snapshots, "blur_people", blur)
    monkeypatch.setattr(snapshots.cv2, "imencode", encode)
    bus = LocalTransport()
    settings = SnapshotSettings(blur=BlurSettings(face_detector=False))
    snap = EvidenceSnapshotter(STORE, bus, tmp_path, now=lambda: T0, settings=settings)
    snap.start()
    people = [(3.0, 3.0), (2.0, 1.5)]
    for k in range(1, 5):
        snap.observe(T0 + k, {c: frame(c, k) for c in CAMS}, {}, people)
    requests = [
        {"x_m": 3.0, "y_m": 3.0, "at_s": T0 + 2.1},  # a place: the ceiling view
        {"plate_id": "g01-s1-p1", "at_s": T0 + 3.0},  # a plate: its shelf camera first
        {"x_m": 2.0, "y_m": 1.5, "at_s": T0 + 4.5},  # just ahead: waits for the next frame
    ]
    for n, where in enumerate(requests):
        req = EvidenceRequest(id=f"r{n}", event_time_s=T0 + 4, device_id="shrink",
                              case_id=f"case-{n}", **where)  # fmt: skip
        publish(bus, "demo", req)
    snap.observe(T0 + 5, {c: frame(c, 5) for c in CAMS}, {}, people)
    written = sorted(tmp_path.iterdir())
    assert len(written) == snap.stats()["snapshots"] >= 4
    assert all(p.suffix == ".jpg" for p in written)  # no half-written or other file
    assert len(encoded) == len(written)
    assert all(any(image is out for out in blurred) for image in encoded)


def _writers() -> set[tuple[str, str]]:
    """(file, function) of every image encoder call in the production rooms."""
    found = set()
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            function = "<module>"
            for line in path.read_text().splitlines():
                head = re.match(r"\s*def (\w+)", line)
                if head:
                    function = head[1]
                if ENCODERS.search(line.split("#", 1)[0]):
                    found.add((str(path.relative_to(ROOT)), function))
    return found


def test_only_the_snapshotter_and_the_heatmap_encode_images() -> None:
    assert _writers() == ALLOWED, (
        "a new place encodes images: make sure no camera frame reaches the disk unblurred "
        "(vision.snapshots.blur_people) and add it to ALLOWED"
    )
