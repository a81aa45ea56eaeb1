"""Camera frame sources: video files, image folders, RTSP streams and a render callable.

Every source yields :class:`SourceFrame` items ``(event_time_s, camera_id,
image)`` in event-time order. Recorded sources (files, folders, renders) take
their event time from a start time plus ``frame index / fps``, so a replay
gives the same times whatever the CPU speed. A frame that could not be decoded
comes through with ``image=None`` rather than being dropped: that is evidence
for :mod:`vision.health`, which decides what a bad frame means.

:func:`frame_sets` merges several time-ordered sources into one
:class:`FrameSet` per time step (one frame per camera), which is what
:class:`vision.edge.EdgeVisionPipeline` consumes.

Production code never imports the simulator: :class:`RenderedSource` takes any
callable ``render(camera_id, t_s) -> image``, and the composition root passes
the twin's renderer in.

>>> src = RenderedSource(lambda cid, t: None, ["cam-a", "cam-b"], start_s=1e9, end_s=1e9 + 0.2,
...                      fps=10.0)
>>> [(round(f.event_time_s - 1e9, 2), f.camera_id) for f in src]
[(0.0, 'cam-a'), (0.0, 'cam-b'), (0.1, 'cam-a'), (0.1, 'cam-b')]
>>> [sorted(s.frames) for s in frame_sets([src], period_s=0.1)]
[['cam-a', 'cam-b'], ['cam-a', 'cam-b']]
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import urlparse

import cv2
import numpy as np

__all__ = [
    "FrameSet",
    "FrameSource",
    "ImageFolderSource",
    "RenderFn",
    "RenderedSource",
    "RtspSource",
    "SourceFrame",
    "VideoFileSource",
    "frame_sets",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
RTSP_SCHEMES = ("rtsp", "rtsps", "http", "https")

RenderFn = Callable[[str, float], np.ndarray | None]


@dataclass(frozen=True)
class SourceFrame:
    """One camera frame at its event time; ``image`` is BGR uint8, or None if undecodable."""

    event_time_s: float
    camera_id: str
    image: np.ndarray | None = field(repr=False)


@dataclass(frozen=True)
class FrameSet:
    """The frames of several cameras taken at one event time (a camera may be absent)."""

    time_s: float
    frames: dict[str, np.ndarray | None] = field(repr=False)


@runtime_checkable
class FrameSource(Protocol):
    """Anything that yields :class:`SourceFrame` items in event-time order."""

    def __iter__(self) -> Iterator[SourceFrame]: ...

    def close(self) -> None: ...


def _check_fps(fps: float, where: str) -> float:
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"{where}: fps must be a positive number, got {fps!r}")
    return float(fps)


def _check_camera_id(camera_id: str) -> str:
    if not camera_id or "/" in camera_id or "+" in camera_id or "#" in camera_id:
        raise ValueError(
            f"camera id {camera_id!r} must be non-empty and contain no '/', '+' or '#' "
            "(it becomes an MQTT topic segment); use the id from the store file"
        )
    return camera_id


class VideoFileSource:
    """Frames of a video file; event time = ``start_time_s + index / fps``.

    ``fps`` defaults to the rate the file declares; pass it when the file's
    header is wrong or missing.
    """

    def __init__(
        self,
        path: str | Path,
        camera_id: str,
        *,
        start_time_s: float,
        fps: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.camera_id = _check_camera_id(camera_id)
        self.start_time_s = float(start_time_s)
        if not self.path.is_file():
            raise FileNotFoundError(f"video file {self.path} not found; check the camera's path")
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise ValueError(
                f"OpenCV cannot open {self.path} as a video; check the file and its codec"
            )
        declared = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        if fps is None and not (math.isfinite(declared) and declared > 0):
            self._capture.release()
            raise ValueError(f"{self.path} declares no frame rate; pass fps= explicitly")
        self.fps = _check_fps(fps if fps is not None else declared, str(self.path))

    def __iter__(self) -> Iterator[SourceFrame]:
        index = 0
        while True:
            ok, image = self._capture.read()
            if not ok:
                break
            yield SourceFrame(self.start_time_s + index / self.fps, self.camera_id, image)
            index += 1
        log.info("video %s ended after %d frames", self.path, index)

    def close(self) -> None:
        self._capture.release()


class ImageFolderSource:
    """Sorted ``*.jpg``/``*.jpeg``/``*.png`` files of a folder; time = start + index / fps.

    An image that does not decode yields ``image=None`` at its slot, so the
    health check sees a corrupt frame rather than a shifted timeline.
    """

    def __init__(
        self, folder: str | Path, camera_id: str, *, start_time_s: float, fps: float
    ) -> None:
        self.folder = Path(folder)
        self.camera_id = _check_camera_id(camera_id)
        self.start_time_s = float(start_time_s)
        self.fps = _check_fps(fps, str(self.folder))
        if not self.folder.is_dir():
            raise FileNotFoundError(f"image folder {self.folder} not found")
        self.paths = sorted(
            p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self.paths:
            raise ValueError(f"image folder {self.folder} holds no .jpg/.jpeg/.png files")

    def __iter__(self) -> Iterator[SourceFrame]:
        for index, path in enumerate(self.paths):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                log.warning("image %s does not decode; passed on as a corrupt frame", path)
            yield SourceFrame(self.start_time_s + index / self.fps, self.camera_id, image)

    def close(self) -> None:
        """Nothing to release: files are opened one at a time."""


class RtspSource:
    """A live stream (RTSP or HTTP) read with OpenCV.

    Construction only validates; the stream is opened on iteration. A live
    frame's event time is its capture time on the ``clock`` (the edge host's
    synchronised Unix clock; inject another for replays and tests). A failed
    read yields ``image=None`` (health sees it) and after
    ``reconnect_after_failures`` consecutive failures the stream is reopened.
    Iteration ends after ``max_frames`` frames (None: never) or on ``close()``.
    """

    def __init__(
        self,
        url: str,
        camera_id: str,
        *,
        fps: float,
        clock: Callable[[], float] = time.time,
        reconnect_after_failures: int = 10,
        max_frames: int | None = None,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme.lower() not in RTSP_SCHEMES or not parsed.hostname:
            raise ValueError(
                f"stream URL {url!r} must look like rtsp://host[:port]/path "
                f"(schemes: {', '.join(RTSP_SCHEMES)})"
            )
        if reconnect_after_failures < 1:
            raise ValueError(
                f"reconnect_after_failures must be at least 1, got {reconnect_after_failures}"
            )
        self.url = url
        self.camera_id = _check_camera_id(camera_id)
        self.fps = _check_fps(fps, url)
        self.clock = clock
        self.reconnect_after_failures = reconnect_after_failures
        self.max_frames = max_frames
        self._capture: cv2.VideoCapture | None = None
        self._closed = False
        self.reconnects = 0

    def _open(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG)
        if not capture.isOpened():
            log.warning("camera %s: cannot open stream %s", self.camera_id, self.url)
        return capture

    def __iter__(self) -> Iterator[SourceFrame]:
        count = failures = 0
        while not self._closed and (self.max_frames is None or count < self.max_frames):
            if self._capture is None:
                self._capture = self._open()
            ok, image = self._capture.read()
            count += 1
            if ok:
                failures = 0
                yield SourceFrame(self.clock(), self.camera_id, image)
                continue
            failures += 1
            yield SourceFrame(self.clock(), self.camera_id, None)
            if failures >= self.reconnect_after_failures:
                log.warning("camera %s: %d failed reads; reconnecting", self.camera_id, failures)
                self._capture.release()
                self._capture, failures = None, 0
                self.reconnects += 1

    def close(self) -> None:
        self._closed = True
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class RenderedSource:
    """Frames produced by ``render(camera_id, t_s)`` for each camera at ``start_s + k / fps``.

    The composition root passes the twin's renderer, e.g.
    ``lambda cid, t: renderer.render(twin, cid, t).image``; times are computed
    from the integer step ``k`` so they do not drift.
    """

    def __init__(
        self,
        render: RenderFn,
        camera_ids: Sequence[str],
        *,
        start_s: float,
        end_s: float,
        fps: float,
    ) -> None:
        if not camera_ids:
            raise ValueError("RenderedSource needs at least one camera id")
        if not end_s >= start_s:
            raise ValueError(f"end_s ({end_s}) must not be before start_s ({start_s})")
        self.render = render
        self.camera_ids = [_check_camera_id(c) for c in camera_ids]
        self.start_s = float(start_s)
        self.end_s = float(end_s)
        self.fps = _check_fps(fps, "RenderedSource")

    def times(self) -> Iterator[float]:
        """Event times of the steps, start included, end excluded."""
        # rounded first: float error in end - start must not add a step
        steps = math.ceil(round((self.end_s - self.start_s) * self.fps, 6))
        for k in range(max(steps, 0)):
            yield self.start_s + k / self.fps

    def frame_sets(self) -> Iterator[FrameSet]:
        """One :class:`FrameSet` per step (cheaper than merging :meth:`__iter__`)."""
        for t in self.times():
            yield FrameSet(t, {cid: self.render(cid, t) for cid in self.camera_ids})

    def __iter__(self) -> Iterator[SourceFrame]:
        for t in self.times():
            for cid in self.camera_ids:
                yield SourceFrame(t, cid, self.render(cid, t))

    def close(self) -> None:
        """Nothing to release."""


def frame_sets(sources: Iterable[Iterable[SourceFrame]], *, period_s: float) -> Iterator[FrameSet]:
    """Merge time-ordered sources into frame sets, one per time step.

    Frames whose event times lie within half a ``period_s`` of the first frame
    of a set belong to it (the set takes that first frame's time). A camera
    seen twice in one window keeps its later frame; the earlier is counted
    and logged, because a camera running faster than the pipeline loses frames.
    """
    if not (math.isfinite(period_s) and period_s > 0):
        raise ValueError(f"period_s must be a positive number, got {period_s!r}")
    merged = heapq.merge(*sources, key=lambda f: f.event_time_s)
    current: FrameSet | None = None
    dropped = 0
    for frame in merged:
        if current is not None and frame.event_time_s - current.time_s < period_s / 2:
            if frame.camera_id in current.frames:
                dropped += 1
                if dropped <= 10 or dropped % 1000 == 0:
                    log.warning(
                        "camera %s sent two frames within %.3f s at %.3f; kept the later "
                        "(%d dropped so far)",
                        frame.camera_id,
                        period_s / 2,
                        frame.event_time_s,
                        dropped,
                    )
            current.frames[frame.camera_id] = frame.image
            continue
        if current is not None:
            yield current
        current = FrameSet(frame.event_time_s, {frame.camera_id: frame.image})
    if current is not None:
        yield current
