"""``smartstore bench vision``: how fast the edge turns camera frames into tracks.

Two measures, both on this machine's CPU with onnxruntime:

1. detector latency and throughput per variant (input size x precision).
   The shared YOLOX-nano export's input is fixed at 416, so 320 and 640 are
   listed as unavailable (they need a model exported at that input) rather
   than faked. INT8 is made at run time with onnxruntime's static
   quantization, calibrated on a few of the benchmark's own frames, into a
   temporary folder that is deleted afterwards (never committed).
2. end-to-end camera-frames per second for N cameras fed from frames decoded
   before the clock starts (decoding is not timed): motion gate -> detector
   -> one :class:`vision.tracking.Tracker` per camera, gated versus ungated
   and fp32 versus INT8, with a per-stage time breakdown.

A benchmark reports wall time by nature; nothing here feeds a decision.
"""

from __future__ import annotations

import logging
import resource
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.registry import LoadedModel, load_model, model_dir_of
from vision.ceiling import CeilingSettings
from vision.detect import OnnxDetector, letterbox, to_blob
from vision.detections import Detections
from vision.motion import MotionGate, MotionSettings
from vision.reid import ReidEmbedder
from vision.tracking import Tracker, TrackerSettings

__all__ = [
    "DEFAULT_MANIFEST",
    "DEFAULT_MODEL_DIR",
    "IMAGE_SUFFIXES",
    "default_source",
    "load_frames",
    "peak_rss_mb",
    "quantize_int8",
    "run_pipeline",
    "run_vision_bench",
    "time_detector",
]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MANIFEST = REPO / "models" / "manifests" / "yolox_nano.yaml"
DEFAULT_MODEL_DIR = REPO.parent / "shared" / "models"
DEFAULT_REID_MANIFEST = REPO / "models" / "manifests" / "ceiling_reid.yaml"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
PERSON = 0  # COCO class id of a person
INSTALL_HINT = "pip install -e '.[bench]' (adds the onnx package that quantization needs)"


# --------------------------------------------------------------------------- frames


def default_source() -> Path:
    """The shared TUD-Campus video, else the PETS09-S2L1 image folder."""
    data = REPO.parent / "shared" / "data" / "mot15"
    for candidate in (data / "TUD-Campus" / "TUD-Campus.mp4", data / "PETS09-S2L1" / "img1"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"no default frames under {data}; pass --source VIDEO or an image FOLDER"
    )


def load_frames(source: str | Path, max_frames: int = 150) -> list[np.ndarray]:
    """Decode up to ``max_frames`` BGR frames from a video file or an image folder."""
    path = Path(source)
    frames: list[np.ndarray] = []
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for f in files[:max_frames]:
            image = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"{f}: not a readable image; remove it from {path}")
            frames.append(image)
    elif path.is_file():
        cap = cv2.VideoCapture(str(path))
        try:
            while len(frames) < max_frames:
                ok, image = cap.read()
                if not ok:
                    break
                frames.append(image)
        finally:
            cap.release()
    else:
        raise FileNotFoundError(f"frame source {path} not found; pass a video file or a folder")
    if len(frames) < 2:
        raise ValueError(
            f"{path}: decoded {len(frames)} frames; a benchmark needs at least 2 "
            f"({', '.join(IMAGE_SUFFIXES)} images or a video OpenCV can read)"
        )
    return frames


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --------------------------------------------------------------------------- INT8


class _Calibration:
    """Feeds letterboxed calibration frames to onnxruntime's static quantizer."""

    def __init__(self, blobs: list[np.ndarray], input_name: str) -> None:
        self._items: Iterator[dict[str, np.ndarray]] = iter([{input_name: b} for b in blobs])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def rewind(self) -> None:  # part of the reader protocol; one pass is enough here
        return None


def quantize_int8(
    model: LoadedModel, frames: Sequence[np.ndarray], out_dir: Path, calibration: int = 8
) -> Path:
    """A static-INT8 (QDQ) copy of ``model`` in ``out_dir``, calibrated on ``frames``.

    Activations unsigned, weights signed per channel (U8S8): on this project's
    x86 machines U8U8 was no faster and lost detections. Older exports are
    first converted to opset 13, which per-channel scales need.

    Raises :class:`ImportError` with an install hint when ``onnx`` is missing.
    """
    try:
        import onnx
        from onnx import version_converter
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise ImportError(f"INT8 quantization needs the onnx package: {INSTALL_HINT}") from exc
    import onnxruntime as ort

    from vision.detect import DECODERS

    spec = DECODERS[model.manifest.decoder]
    size = model.manifest.input_size
    step = max(1, len(frames) // calibration)
    blobs = [
        to_blob(
            [letterbox(f, size, centre=spec.centre)[0]],
            swap_rb=spec.swap_rb,
            unit_scale=spec.unit_scale,
        )
        for f in list(frames)[::step][:calibration]
    ]
    input_name = ort.InferenceSession(str(model.path)).get_inputs()[0].name
    graph = onnx.load(str(model.path))
    opset = max((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 13:
        # per-channel weight scales need DequantizeLinear's axis, added in opset 13
        graph = version_converter.convert_version(graph, 13)
    upgraded = out_dir / f"{model.path.stem}.op13.onnx"
    onnx.save(graph, str(upgraded))
    prepared = out_dir / f"{model.path.stem}.prep.onnx"
    quant_pre_process(str(upgraded), str(prepared), skip_symbolic_shape=True)
    target = out_dir / f"{model.path.stem}.int8.onnx"
    quantize_static(
        str(prepared),
        str(target),
        _Calibration(blobs, input_name),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        calibrate_method=CalibrationMethod.MinMax,
    )
    return target


# --------------------------------------------------------------------------- detector timing


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def time_detector(
    detector: OnnxDetector, frames: Sequence[np.ndarray], seconds: float, min_runs: int = 5
) -> dict[str, float | int]:
    """Latency (ms per frame, one frame a call) and throughput of ``detector.detect``."""
    totals: list[float] = []
    stages: dict[str, float] = {}
    start = time.perf_counter()
    i = 0
    while len(totals) < min_runs or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        detector.detect([frames[i % len(frames)]])
        totals.append((time.perf_counter() - t0) * 1e3)
        for k, v in detector.last_timings_ms.items():
            stages[k] = stages.get(k, 0.0) + v
        i += 1
    elapsed = time.perf_counter() - start
    return {
        "runs": len(totals),
        "mean_ms": float(np.mean(totals)),
        "p50_ms": _percentile(totals, 50),
        "p95_ms": _percentile(totals, 95),
        "frames_per_s": len(totals) / elapsed,
        **{f"{k}_ms": v / len(totals) for k, v in stages.items()},
    }


# --------------------------------------------------------------------------- end to end


@dataclass
class _Stages:
    ms: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(
            ("motion", "preprocess", "inference", "postprocess", "tracking", "looks"), 0.0
        )
    )

    def add(self, name: str, ms: float) -> None:
        self.ms[name] = self.ms.get(name, 0.0) + ms


def _camera_frames(
    frames: Sequence[np.ndarray], cameras: int, active: int
) -> Callable[[int, int], np.ndarray]:
    """Frame ``k`` of camera ``c``: active cameras play the clip from staggered starts
    (so they do not see the same frame at once); idle ones watch a still floor."""
    stride = max(1, len(frames) // max(1, cameras))

    def frame(camera: int, k: int) -> np.ndarray:
        if camera >= active:
            return frames[(camera * stride) % len(frames)]
        # play forward then backward so motion never jumps at the loop point
        n = len(frames)
        pos = (k + camera * stride) % (2 * n - 2)
        return frames[pos if pos < n else 2 * n - 2 - pos]

    return frame


def run_pipeline(
    detector: OnnxDetector,
    frames: Sequence[np.ndarray],
    *,
    cameras: int,
    gated: bool,
    seconds: float,
    active_cameras: int | None = None,
    motion: MotionSettings | None = None,
    tracker: TrackerSettings | None = None,
    camera_fps: float = 10.0,
    reid: ReidEmbedder | None = None,
    min_rounds: int = 2,
) -> dict[str, Any]:
    """Camera-frames per second through gate -> detector -> tracker -> looks, all cameras.

    Each round takes one frame from every camera; frames that need the
    detector are sent in one call (the detector batches them when the model
    allows). A gated camera whose frame is still reuses its last detections.
    With ``reid``, every tracked person's look is computed as the ceiling
    tracker does (vision/reid.py: balance the frame, cut, embed). At least
    ``min_rounds`` rounds run however slow the machine, so shares are comparable.
    """
    active = cameras if active_cameras is None else max(0, min(active_cameras, cameras))
    frame_of = _camera_frames(frames, cameras, active)
    gates = [MotionGate(motion) for _ in range(cameras)]
    trackers = [Tracker(tracker, frame_rate_hz=camera_fps) for _ in range(cameras)]
    last = [Detections.empty() for _ in range(cameras)]
    stages = _Stages()
    detected = processed = rounds = tracks_out = 0
    start = time.perf_counter()
    while rounds < min_rounds or time.perf_counter() - start < seconds:
        batch = [frame_of(c, rounds) for c in range(cameras)]
        want = list(range(cameras))
        if gated:
            t0 = time.perf_counter()
            want = [c for c in want if gates[c].update(batch[c]).detect]
            stages.add("motion", (time.perf_counter() - t0) * 1e3)
        for c, dets in zip(
            want, _detect_each(detector, [batch[c] for c in want], stages), strict=True
        ):
            last[c] = dets
        t0 = time.perf_counter()
        tracked = [trackers[c].update(last[c]) for c in range(cameras)]
        tracks_out += sum(len(t) for t in tracked)
        t1 = time.perf_counter()
        stages.add("tracking", (t1 - t0) * 1e3)
        if reid is not None:
            for c, tracks in enumerate(tracked):
                if tracks:
                    reid.looks({"c": batch[c]})("c", np.array([t.xyxy for t in tracks]))
            stages.add("looks", (time.perf_counter() - t1) * 1e3)
        detected += len(want)
        processed += cameras
        rounds += 1
    elapsed = time.perf_counter() - start
    return {
        "gated": gated,
        "cameras": cameras,
        "active_cameras": active,
        "camera_frames": processed,
        "seconds": elapsed,
        "camera_fps_end_to_end": processed / elapsed,
        "detector_share": detected / processed,
        "mean_tracks_per_camera_frame": tracks_out / processed,
        "stage_ms_per_camera_frame": {k: v / processed for k, v in stages.ms.items()},
        "stage_share": {k: v / (elapsed * 1e3) for k, v in stages.ms.items()},
    }


def _detect_each(
    detector: OnnxDetector, frames: list[np.ndarray], stages: _Stages
) -> list[Detections]:
    if not frames:
        return []
    out = detector.detect(frames)
    for k, v in detector.last_timings_ms.items():
        stages.add(k, v)
    return out


# --------------------------------------------------------------------------- the command


def _unavailable(size: int, native: int) -> dict[str, Any]:
    return {
        "available": False,
        "input_size": size,
        "reason": f"the shared model's input is fixed at {native}x{native}; a {size} variant "
        f"needs a model exported with a {size}x{size} (or dynamic) input",
    }


def run_vision_bench(
    *,
    cameras: int = 8,
    seconds: float = 5.0,
    model_dir: str | Path = DEFAULT_MODEL_DIR,
    manifest: str | Path = DEFAULT_MANIFEST,
    source: str | Path | None = None,
    active_cameras: int | None = None,
    max_frames: int = 150,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
    reid_manifest: str | Path | None = DEFAULT_REID_MANIFEST,
) -> dict[str, Any]:
    """Run both measures; returns the JSON-ready report (see the module docstring).

    ``seconds`` is the wall time spent on each detector variant and on each
    end-to-end configuration.
    """
    if cameras < 1 or seconds <= 0:
        raise ValueError(f"--cameras must be >= 1 and --seconds > 0, got {cameras}, {seconds}")
    say = progress or (lambda _msg: None)
    model = load_model(manifest, model_dir=model_dir)
    reid = (
        None
        if reid_manifest is None
        else ReidEmbedder.from_manifest(reid_manifest, model_dir_of(reid_manifest))
    )
    src = Path(source) if source is not None else default_source()
    frames = load_frames(src, max_frames)
    say(f"{len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]} from {src}")
    native = model.manifest.input_size
    settings: dict[str, Any] = {"keep_class_ids": [PERSON], "threads": threads}
    variants: dict[str, dict[str, Any]] = {}
    detectors: dict[str, OnnxDetector] = {"fp32": OnnxDetector.from_model(model, **settings)}
    with tempfile.TemporaryDirectory(prefix="smartstore-int8-") as tmp:
        try:
            t0 = time.perf_counter()
            int8_path = quantize_int8(model, frames, Path(tmp))
            say(f"INT8 model quantized in {time.perf_counter() - t0:.1f} s")
            detectors["int8"] = OnnxDetector(
                int8_path,
                decoder=model.manifest.decoder,
                input_size=native,
                classes=model.classes,
                colour=model.manifest.colour,  # the same frames in as the fp32 model gets
                **settings,
            )
        except ImportError as exc:
            variants[f"{native}_int8"] = {
                "available": False,
                "input_size": native,
                "reason": str(exc),
            }
        for precision, det in detectors.items():
            name = f"{native}_{precision}"
            variants[name] = {
                "available": True,
                "input_size": native,
                "precision": precision,
                **time_detector(det, frames, seconds),
            }
            say(f"detector {name}: {variants[name]['mean_ms']:.1f} ms/frame")
    for size in (320, 640):
        if size != native:
            for precision in ("fp32", "int8"):
                variants[f"{size}_{precision}"] = {
                    **_unavailable(size, native),
                    "precision": precision,
                }
    runs: dict[str, dict[str, Any]] = {}
    for precision, det in detectors.items():
        for gated in (False, True):
            name = f"{precision}_{'gated' if gated else 'ungated'}"
            runs[name] = run_pipeline(
                det,
                frames,
                cameras=cameras,
                gated=gated,
                seconds=seconds,
                active_cameras=active_cameras,
                reid=reid,
                # the ceiling service's per-camera tracker, not the MOT defaults (which start
                # tracks only above 0.8 and so left the looks stage with nothing to do)
                tracker=CeilingSettings().camera_tracker,
            )
            say(
                f"end to end {name}: {runs[name]['camera_fps_end_to_end']:.1f} camera-frames/s "
                f"(detector on {runs[name]['detector_share']:.0%} of frames)"
            )
    best = max(runs, key=lambda k: runs[k]["camera_fps_end_to_end"])
    return {
        "model": model.manifest.name,
        "reid_model": None if reid is None else Path(str(reid_manifest)).stem,
        "source": str(src),
        "frames": len(frames),
        "frame_size": [int(frames[0].shape[1]), int(frames[0].shape[0])],
        "cameras": cameras,
        "active_cameras": runs[best]["active_cameras"],
        "target_camera_fps": cameras * 10.0,
        "camera_fps_end_to_end": runs[best]["camera_fps_end_to_end"],
        "best_configuration": best,
        "end_to_end": runs,
        "detector_ms": {k: v.get("mean_ms") for k, v in variants.items()},
        "detector_variants": variants,
        "peak_rss_mb": peak_rss_mb(),
        "threads": threads,
        "decoding_timed": False,
    }
