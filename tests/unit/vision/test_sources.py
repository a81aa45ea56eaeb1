"""Frame sources on files written here with OpenCV, a render callable, and merging."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vision.sources import (
    FrameSource,
    ImageFolderSource,
    RenderedSource,
    RtspSource,
    SourceFrame,
    VideoFileSource,
    frame_sets,
)

T0 = 1_700_000_000.0


def _frame(k: int, w: int = 64, h: int = 48) -> np.ndarray:
    img = np.full((h, w, 3), 40, np.uint8)
    img[:, (k * 5) % w : (k * 5) % w + 8] = 220  # a moving bar, so frames differ
    return img


def _write_video(path: Path, n: int, fps: float) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened(), "OpenCV cannot write MJPG/AVI here"
    for k in range(n):
        writer.write(_frame(k))
    writer.release()


def test_video_file_times_come_from_start_and_index(tmp_path: Path) -> None:
    path = tmp_path / "cam.avi"
    _write_video(path, 12, fps=8.0)
    src = VideoFileSource(path, "cam-ceil-01", start_time_s=T0)
    assert isinstance(src, FrameSource)
    frames = list(src)
    src.close()
    assert len(frames) == 12
    assert np.allclose([f.event_time_s - T0 for f in frames], np.arange(12) / 8.0)
    assert {f.camera_id for f in frames} == {"cam-ceil-01"}
    assert all(f.image is not None and f.image.shape == (48, 64, 3) for f in frames)
    # the bar moved: decoded frames are the ones written, in order
    first, second = frames[0].image, frames[1].image
    assert first is not None and second is not None and not np.array_equal(first, second)


def test_video_file_fps_override(tmp_path: Path) -> None:
    path = tmp_path / "cam.avi"
    _write_video(path, 3, fps=8.0)
    frames = list(VideoFileSource(path, "c1", start_time_s=T0, fps=2.0))
    assert [f.event_time_s - T0 for f in frames] == [0.0, 0.5, 1.0]


@pytest.mark.parametrize(
    ("name", "content", "error", "match"),
    [
        ("missing.avi", None, FileNotFoundError, "missing.avi"),
        ("garbage.avi", b"not a video at all", ValueError, "cannot open"),
    ],
)
def test_video_file_errors_name_the_file(
    tmp_path: Path, name: str, content: bytes | None, error: type[Exception], match: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=match):
        VideoFileSource(path, "c1", start_time_s=T0)


def test_image_folder_sorted_with_corrupt_frame_kept(tmp_path: Path) -> None:
    for k in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"f{k:03d}.{'png' if k % 2 else 'jpg'}"), _frame(k))
    (tmp_path / "f003.jpg").write_bytes(b"\xff\xd8 broken")
    (tmp_path / "notes.txt").write_text("ignored")
    frames = list(ImageFolderSource(tmp_path, "c1", start_time_s=T0, fps=10.0))
    assert len(frames) == 4
    assert np.allclose([f.event_time_s - T0 for f in frames], [0.0, 0.1, 0.2, 0.3])
    assert frames[3].image is None  # undecodable: passed on for the health check
    # png frame 1 is lossless: it is exactly the one written at index 1
    assert frames[1].image is not None and np.array_equal(frames[1].image, _frame(1))


def test_image_folder_without_images_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no \.jpg"):
        ImageFolderSource(tmp_path, "c1", start_time_s=T0, fps=10.0)


@pytest.mark.parametrize(
    ("url", "kwargs", "match"),
    [
        ("rtsp://10.0.0.5:554/stream1", {}, None),
        ("rtsps://cam.local/live", {}, None),
        ("file:///tmp/x.mp4", {}, "rtsp://host"),
        ("rtsp:///nohost", {}, "rtsp://host"),
        ("rtsp://10.0.0.5/s", {"fps": 0.0}, "fps must be a positive"),
        ("rtsp://10.0.0.5/s", {"reconnect_after_failures": 0}, "reconnect_after_failures"),
        ("rtsp://10.0.0.5/s", {"camera_id": "a/b"}, "camera id"),
    ],
)
def test_rtsp_source_is_validated_without_connecting(
    url: str, kwargs: dict[str, object], match: str | None
) -> None:
    args: dict[str, object] = {"camera_id": "cam-ceil-01", "fps": 10.0, **kwargs}
    if match is None:
        src = RtspSource(url, **args)  # type: ignore[arg-type]
        assert src.url == url and src.reconnects == 0
        src.close()
    else:
        with pytest.raises(ValueError, match=match):
            RtspSource(url, **args)  # type: ignore[arg-type]


def test_rendered_source_calls_render_per_camera_and_step() -> None:
    calls: list[tuple[str, float]] = []

    def render(cid: str, t: float) -> np.ndarray:
        calls.append((cid, t))
        return _frame(round((t - T0) * 10))

    src = RenderedSource(render, ["a", "b", "c"], start_s=T0, end_s=T0 + 1.0, fps=10.0)
    sets = list(src.frame_sets())
    assert len(sets) == 10 and len(calls) == 30
    assert all(sorted(s.frames) == ["a", "b", "c"] for s in sets)
    assert np.allclose([s.time_s - T0 for s in sets], np.arange(10) / 10)
    with pytest.raises(ValueError, match="end_s"):
        RenderedSource(render, ["a"], start_s=T0, end_s=T0 - 1, fps=10.0)


def test_frame_sets_merge_sources_by_event_time() -> None:
    def stream(cid: str, offset_s: float, n: int) -> list[SourceFrame]:
        return [SourceFrame(T0 + k / 10 + offset_s, cid, _frame(k)) for k in range(n)]

    # b lags a by 10 ms (still the same step); c starts a step late and sends one frame twice
    c = stream("c", 0.1, 2)
    c.insert(1, SourceFrame(T0 + 0.101, "c", None))
    sets = list(frame_sets([stream("a", 0.0, 3), stream("b", 0.01, 3), c], period_s=0.1))
    assert [round(s.time_s - T0, 3) for s in sets] == [0.0, 0.1, 0.2]
    assert [sorted(s.frames) for s in sets] == [["a", "b"], ["a", "b", "c"], ["a", "b", "c"]]
    assert sets[1].frames["c"] is None  # the later frame of the two kept
    with pytest.raises(ValueError, match="period_s"):
        list(frame_sets([], period_s=0.0))
