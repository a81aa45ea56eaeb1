"""Datasets rendered from the twin's cameras: YOLO detection and MOT sequences.

``export_yolo`` writes a person-detection dataset in the YOLO layout
(``images/{train,val}``, ``labels/{train,val}``, ``data.yaml``). The val
split is the held-out one: its scenarios are re-seeded from ``val_seed`` (other
shoppers, other paths, other clothes, other noise) and it is lit differently
(``val_lighting``), so a score on it says how the detector generalises.

``export_shelf_yolo`` does the same for the shelf cameras: hands in view and
the packages they hold (``sim.render_shelf``), frames drawn mostly during reaches.

``export_mot`` writes one camera's view of a scenario as a MOTChallenge
sequence (``img1/``, ``gt/gt.txt``, ``seqinfo.ini``) to score trackers on
rendered held-out video.

All are deterministic: the same arguments give the same bytes.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from iot.store import load_store
from sim.render import LIGHTING_PRESETS, CeilingRenderer, Frame, Lighting, RenderSettings
from sim.render_shelf import SHELF_SETTINGS, ShelfFrame, ShelfRenderer
from sim.scenario import Scenario, load_scenario
from sim.shoppers import Reach
from sim.twin import Twin
from vision.colour import COLOUR_MODES, normalise_colour

__all__ = [
    "SHELF_CLASSES",
    "MotExport",
    "YoloExport",
    "export_mot",
    "export_shelf_yolo",
    "export_yolo",
    "shelf_label_lines",
    "yolo_label_lines",
]

log = logging.getLogger(__name__)

PERSON_CLASS = 0
_CANDIDATES_PER_FRAME = 4  # times drawn per wanted frame, to prefer frames with people


@dataclass
class YoloExport:
    """What ``export_yolo`` wrote."""

    out_dir: Path
    images: dict[str, int] = field(default_factory=dict)  # per split
    boxes: dict[str, int] = field(default_factory=dict)


@dataclass
class MotExport:
    """What ``export_mot`` wrote."""

    out_dir: Path
    frames: int
    gt_rows: int
    start_s: float


def _lighting(value: str | Lighting) -> Lighting:
    if isinstance(value, Lighting):
        return value
    try:
        return LIGHTING_PRESETS[value]
    except KeyError:
        raise ValueError(
            f"unknown lighting {value!r}; use one of {sorted(LIGHTING_PRESETS)} or a Lighting"
        ) from None


def _reseeded(path: Path, seed: int, k: int) -> Scenario:
    """The scenario at ``path`` with its seed derived from (split seed, scenario index)."""
    scenario = load_scenario(path)
    derived = int(np.random.default_rng([seed, k, 17]).integers(0, 2**31 - 1))
    return scenario.model_copy(update={"seed": derived})


def yolo_label_lines(frame: Frame, min_visibility: float) -> list[str]:
    """``class cx cy w h`` lines (normalised to [0, 1]) for the people visible enough."""
    h, w = frame.image.shape[:2]
    lines = []
    for p in frame.people:
        if p.visibility < min_visibility:
            continue
        x0, y0, x1, y1 = p.xyxy
        lines.append(
            f"{PERSON_CLASS} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} "
            f"{(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}"
        )
    return lines


def _pick_times(
    renderer: CeilingRenderer,
    twin: Twin,
    camera_id: str,
    n: int,
    *,
    rng: np.random.Generator,
    empty_fraction: float,
) -> list[float]:
    """``n`` event times, mostly with someone in view, a few empty ones as negatives."""
    cands = np.sort(rng.uniform(twin.start_s, twin.end_s, size=n * _CANDIDATES_PER_FRAME))
    seen = [bool(renderer.people_in_view(twin, camera_id, float(t))) for t in cands]
    busy = [float(t) for t, s in zip(cands, seen, strict=True) if s]
    empty = [float(t) for t, s in zip(cands, seen, strict=True) if not s]
    n_empty = min(round(n * empty_fraction), len(empty))
    n_busy = min(n - n_empty, len(busy))
    n_empty = min(n - n_busy, len(empty))  # too few busy frames: top up with empty ones
    chosen = list(rng.choice(busy, n_busy, replace=False)) if n_busy else []
    chosen += list(rng.choice(empty, n_empty, replace=False)) if n_empty else []
    return sorted(float(t) for t in chosen)


def _export_split(
    out_dir: Path,
    split: str,
    scenario_paths: Sequence[Path],
    *,
    seed: int,
    lightings: Sequence[Lighting],
    frames_per_camera: int,
    opts: _YoloOptions,
) -> tuple[int, int]:
    dirs = _split_dirs(out_dir, split)
    images = boxes = 0
    for k, path in enumerate(scenario_paths):
        scenario = _reseeded(path, seed, k)
        twin = Twin(load_store(opts.store or scenario.store), scenario)
        # several lightings: scenario k gets lighting k mod n (repeat a scenario to get all)
        lighting = lightings[k % len(lightings)]
        settings = opts.settings.model_copy(update={"lighting": lighting})
        renderer = CeilingRenderer(twin.store, seed=scenario.seed, settings=settings)
        cams = opts.cameras or sorted(renderer.cameras)
        rng = np.random.default_rng([seed, k, 23])
        for cam_id in cams:
            for t in _pick_times(
                renderer,
                twin,
                cam_id,
                frames_per_camera,
                rng=rng,
                empty_fraction=opts.empty_fraction,
            ):
                frame = renderer.render(twin, cam_id, t)
                stem = f"{path.stem}_{k}_{cam_id}_{round((t - twin.start_s) * 1000):09d}"
                lines = yolo_label_lines(frame, opts.min_visibility)
                _write_sample(
                    dirs,
                    stem,
                    frame.image,
                    lines,
                    colour=opts.colour,
                    jpeg_quality=opts.jpeg_quality,
                )
                images += 1
                boxes += len(lines)
    log.info("dataset split %s: %d images, %d boxes", split, images, boxes)
    return images, boxes


@dataclass(frozen=True)
class _YoloOptions:
    settings: RenderSettings
    cameras: Sequence[str] | None
    min_visibility: float
    empty_fraction: float
    jpeg_quality: int
    colour: str
    store: Path | None = None  # render in this store's cameras instead of the scenario's


def _split_dirs(out_dir: Path, split: str) -> tuple[Path, Path]:
    """The YOLO layout's (images, labels) folders of one split, created."""
    img_dir, lbl_dir = out_dir / "images" / split, out_dir / "labels" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir.mkdir(parents=True, exist_ok=True)
    return img_dir, lbl_dir


def _write_sample(
    dirs: tuple[Path, Path],
    stem: str,
    image: np.ndarray,
    lines: Sequence[str],
    *,
    colour: str,
    jpeg_quality: int,
) -> None:
    """One image (through the model's colour step) and its label file, side by side."""
    img_dir, lbl_dir = dirs
    _write_jpg(img_dir / f"{stem}.jpg", normalise_colour(image, colour), jpeg_quality)
    (lbl_dir / f"{stem}.txt").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def _write_jpg(path: Path, image: np.ndarray, quality: int) -> None:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode {path.name} as JPEG")
    path.write_bytes(buf.tobytes())


def _checked_splits(
    train_lighting: str | Lighting | Sequence[str | Lighting],
    val_lighting: str | Lighting,
    *,
    train_seed: int,
    val_seed: int,
    colour: str,
    frames_per_camera: int,
    scenario_paths: Sequence[str | Path],
) -> tuple[list[Lighting], Lighting]:
    """The train lightings and the val lighting, once the split arguments are checked."""
    lights = (
        [train_lighting] if isinstance(train_lighting, str | Lighting) else list(train_lighting)
    )
    train_lights, val_light = [_lighting(x) for x in lights], _lighting(val_lighting)
    if colour not in COLOUR_MODES:
        raise ValueError(f"unknown colour normalisation {colour!r}; choose one of {COLOUR_MODES}")
    if not train_lights:
        raise ValueError("train_lighting is empty; name at least one lighting preset")
    if train_seed == val_seed:
        raise ValueError(
            f"train_seed and val_seed are both {train_seed}; the held-out split needs its own seed"
        )
    if val_light in train_lights:
        raise ValueError(
            "train and val lighting are the same; the held-out split needs other "
            f"lighting (presets: {sorted(LIGHTING_PRESETS)})"
        )
    if frames_per_camera < 1:
        raise ValueError(f"frames_per_camera must be at least 1, got {frames_per_camera}")
    if not scenario_paths:
        raise ValueError("no scenario files given; pass e.g. scenarios/normal.yaml")
    return train_lights, val_light


def export_yolo(
    out_dir: str | Path,
    scenario_paths: Sequence[str | Path],
    *,
    frames_per_camera: int,
    train_seed: int,
    val_seed: int,
    val_frames_per_camera: int | None = None,
    train_lighting: str | Lighting | Sequence[str | Lighting] = "day",
    val_lighting: str | Lighting = "evening",
    cameras: Sequence[str] | None = None,
    min_visibility: float = 0.2,
    empty_fraction: float = 0.1,
    jpeg_quality: int = 90,
    settings: RenderSettings | None = None,
    colour: str = "none",
    store: str | Path | None = None,
) -> YoloExport:
    """Render a YOLO person dataset; val is a held-out seed and lighting (see module doc).

    ``frames_per_camera`` frames are rendered per camera and scenario for train,
    ``val_frames_per_camera`` (default a quarter of it, at least 1) for val.
    People less than ``min_visibility`` visible get no label. Several
    ``train_lighting`` values are dealt round the scenarios (scenario k gets
    lighting k mod n). ``colour`` is the normalisation the model's manifest will
    name (``vision.colour``): the written images are what the model will see.
    ``store`` renders the scenarios' shoppers in another store file's cameras
    (the same floor and gondolas, other camera mounts: views a model must learn).
    """
    out = Path(out_dir)
    train_lights, val_light = _checked_splits(
        train_lighting,
        val_lighting,
        train_seed=train_seed,
        val_seed=val_seed,
        colour=colour,
        frames_per_camera=frames_per_camera,
        scenario_paths=scenario_paths,
    )
    n_val = val_frames_per_camera or max(1, frames_per_camera // 4)
    opts = _YoloOptions(
        settings or RenderSettings(),
        cameras,
        min_visibility,
        empty_fraction,
        jpeg_quality,
        colour,
        None if store is None else Path(store),
    )
    paths = [Path(p) for p in scenario_paths]
    result = YoloExport(out)
    for split, seed, split_lights, n in (
        ("train", train_seed, train_lights, frames_per_camera),
        ("val", val_seed, [val_light], n_val),
    ):
        result.images[split], result.boxes[split] = _export_split(
            out, split, paths, seed=seed, lightings=split_lights, frames_per_camera=n, opts=opts
        )
    (out / "data.yaml").write_text(
        "# Rendered ceiling-camera person dataset (sim/dataset.py); paths are relative to\n"
        "# this file's folder. val: other seed and lighting than train (held out).\n"
        "train: images/train\nval: images/val\nnc: 1\nnames: [person]\n",
        encoding="utf-8",
    )
    meta = {
        "scenarios": [p.as_posix() for p in paths],
        "store": None if store is None else Path(store).as_posix(),
        "train": {
            "seed": train_seed,
            "lighting": [light.model_dump() for light in train_lights],
            "frames_per_camera": frames_per_camera,
        },
        "val": {"seed": val_seed, "lighting": val_light.model_dump(), "frames_per_camera": n_val},
        "min_visibility": min_visibility,
        "colour": colour,
        "images": result.images,
        "boxes": result.boxes,
    }
    (out / "dataset.json").write_text(
        json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return result


def _first_busy_time(renderer: CeilingRenderer, twin: Twin, camera_id: str) -> float:
    for t in np.arange(twin.start_s, twin.end_s, 1.0):
        if renderer.people_in_view(twin, camera_id, float(t)):
            return float(t)
    raise ValueError(f"camera {camera_id!r} never sees a shopper in this scenario")


def export_mot(
    out_dir: str | Path,
    scenario_path: str | Path,
    camera_id: str,
    seconds: float,
    *,
    seed: int | None = None,
    lighting: str | Lighting = "evening",
    start_offset_s: float | None = None,
    min_visibility: float = 0.2,
    jpeg_quality: int = 90,
    settings: RenderSettings | None = None,
) -> MotExport:
    """Write ``seconds`` of ``camera_id`` at its fps as a MOTChallenge sequence.

    ``seed`` re-seeds the scenario (None keeps its own). The sequence starts
    ``start_offset_s`` after the scenario start, or by default at the first
    second the camera sees someone. Ground-truth ids are the visit index + 1;
    rows less than ``min_visibility`` visible have conf 0 (ignored when scored).
    """
    out = Path(out_dir)
    scenario = load_scenario(scenario_path)
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": int(seed)})
    twin = Twin(load_store(scenario.store), scenario)
    base = settings or RenderSettings()
    renderer = CeilingRenderer(
        twin.store,
        seed=scenario.seed,
        settings=base.model_copy(update={"lighting": _lighting(lighting)}),
    )
    cam = renderer.camera(camera_id)
    start = (
        _first_busy_time(renderer, twin, camera_id)
        if start_offset_s is None
        else twin.start_s + start_offset_s
    )
    n = max(1, math.floor(seconds * cam.fps + 1e-9))
    (out / "img1").mkdir(parents=True, exist_ok=True)
    (out / "gt").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        frame = renderer.render(twin, camera_id, start + i / cam.fps)
        _write_jpg(out / "img1" / f"{i + 1:06d}.jpg", frame.image, jpeg_quality)
        for p in frame.people:
            x0, y0, x1, y1 = p.xyxy
            conf = 1 if p.visibility >= min_visibility else 0
            rows.append(
                f"{i + 1},{p.visit_index + 1},{x0:.2f},{y0:.2f},{x1 - x0:.2f},{y1 - y0:.2f},"
                f"{conf},1,{p.visibility:.4f}\n"
            )
    (out / "gt" / "gt.txt").write_text("".join(rows), encoding="utf-8")
    (out / "seqinfo.ini").write_text(
        f"[Sequence]\nname={out.name}\nimDir=img1\nframeRate={cam.fps:g}\nseqLength={n}\n"
        f"imWidth={cam.width_px}\nimHeight={cam.height_px}\nimExt=.jpg\n",
        encoding="utf-8",
    )
    log.info("MOT sequence %s: %d frames, %d gt rows", out, n, len(rows))
    return MotExport(out, n, len(rows), start)


# ---------------------------------------------------------------- shelf cameras

# A hand (0) or a hand holding a package (1), boxed together with what it holds: a
# package alone is a dozen pixels, a hand with it is learnable (issue 3's "hand,
# hand-with-product"); the package's own crop is read off the box's top by the runtime.
SHELF_CLASSES = ("hand", "hand_holding")
_MIN_BOX_PX = 2.0  # boxes thinner than this (a hand just entering the image) get no label


@dataclass(frozen=True)
class _ShelfOptions:
    settings: RenderSettings
    cameras: Sequence[str] | None
    empty_fraction: float
    jpeg_quality: int
    colour: str
    crop_px: int | None = None


_MIN_CROP_SHARE = 0.5  # a hand box cut by a crop keeps its label if this much of it shows


def shelf_crop(
    frame: ShelfFrame, side_px: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    """A ``side_px`` square of the frame at full resolution, and its label lines.

    Training on crops costs a quarter of training on whole 640-pixel frames and
    keeps every hand at the pixel size the runtime sees (the detector is
    convolutional and runs on the whole frame at its manifest's input size).
    The square holds a hand when the frame has one (at a random place in the
    square), else lies anywhere. A hand cut by the square keeps its label,
    clipped, if at least half of it shows; smaller scraps are dropped.
    """
    h, w = frame.image.shape[:2]
    side = min(side_px, w, h)
    boxes = _shelf_boxes(frame)
    if boxes:
        _, (x0, y0, x1, y1) = boxes[int(rng.integers(len(boxes)))]
        u_lo, u_hi = max(0.0, x1 - side), min(float(w - side), x0)
        v_lo, v_hi = max(0.0, y1 - side), min(float(h - side), y0)
        u = int(rng.uniform(u_lo, max(u_lo, u_hi)))
        v = int(rng.uniform(v_lo, max(v_lo, v_hi)))
    else:
        u, v = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    kept = []
    for cls, (x0, y0, x1, y1) in boxes:
        c0, d0 = max(x0, u) - u, max(y0, v) - v
        c1, d1 = min(x1, u + side) - u, min(y1, v + side) - v
        if c1 <= c0 or d1 <= d0:
            continue
        if (c1 - c0) * (d1 - d0) < _MIN_CROP_SHARE * (x1 - x0) * (y1 - y0):
            continue
        kept.append((cls, (c0, d0, c1, d1)))
    return frame.image[v : v + side, u : u + side].copy(), _label_lines(kept, side, side)


def _shelf_boxes(frame: ShelfFrame) -> list[tuple[int, tuple[float, float, float, float]]]:
    """(class, xyxy): an empty hand (0), a hand with what it holds in one box (1)."""
    boxes: list[tuple[int, tuple[float, float, float, float]]] = []
    for hand in frame.hands:
        if hand.product_xyxy is None:
            boxes.append((0, hand.xyxy))
        else:
            (a0, b0, a1, b1), (c0, d0, c1, d1) = hand.xyxy, hand.product_xyxy
            boxes.append((1, (min(a0, c0), min(b0, d0), max(a1, c1), max(b1, d1))))
    return boxes


def _label_lines(
    boxes: Sequence[tuple[int, tuple[float, float, float, float]]], w: int, h: int
) -> list[str]:
    lines = []
    for cls, (x0, y0, x1, y1) in boxes:
        if x1 - x0 < _MIN_BOX_PX or y1 - y0 < _MIN_BOX_PX:
            continue
        lines.append(
            f"{cls} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} "
            f"{(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}"
        )
    return lines


def shelf_label_lines(frame: ShelfFrame) -> list[str]:
    """``class cx cy w h`` lines: an empty hand (0), a hand with what it holds in one box (1)."""
    h, w = frame.image.shape[:2]
    return _label_lines(_shelf_boxes(frame), w, h)


def _shelf_times(
    reaches: Sequence[Reach],
    start_s: float,
    end_s: float,
    n: int,
    *,
    rng: np.random.Generator,
    empty_fraction: float,
) -> list[float]:
    """``n`` event times, mostly inside reaches into the face, a few with no reach at all."""
    n_busy = n - round(n * empty_fraction) if reaches else 0
    out = []
    if n_busy:
        spans = np.array([r.end_s - r.start_s for r in reaches])
        picks = rng.choice(len(reaches), size=n_busy, p=spans / spans.sum())
        out += [float(rng.uniform(reaches[k].start_s, reaches[k].end_s)) for k in picks]
    tries = 0
    while len(out) < n and tries < 50 * n:  # empty frames: rejection-sample outside every reach
        t = float(rng.uniform(start_s, end_s))
        tries += 1
        if not any(r.start_s <= t <= r.end_s for r in reaches):
            out.append(t)
    return sorted(out)


def _export_shelf_split(
    out_dir: Path,
    split: str,
    scenario_paths: Sequence[Path],
    *,
    seed: int,
    lightings: Sequence[Lighting],
    frames_per_camera: int,
    opts: _ShelfOptions,
) -> tuple[int, int]:
    dirs = _split_dirs(out_dir, split)
    images = boxes = 0
    for k, path in enumerate(scenario_paths):
        scenario = _reseeded(path, seed, k)
        twin = Twin(load_store(scenario.store), scenario)
        settings = opts.settings.model_copy(update={"lighting": lightings[k % len(lightings)]})
        renderer = ShelfRenderer(twin.store, scenario.seed, settings)
        rng = np.random.default_rng([seed, k, 29])
        for cam_id in opts.cameras or sorted(renderer.cameras):
            reaches = renderer.face_reaches(twin, cam_id)
            times = _shelf_times(
                reaches,
                twin.start_s,
                twin.end_s,
                frames_per_camera,
                rng=rng,
                empty_fraction=opts.empty_fraction,
            )
            for t in times:
                frame = renderer.render(twin, cam_id, t)
                stem = f"{path.stem}_{k}_{cam_id}_{round((t - twin.start_s) * 1000):09d}"
                colour = opts.colour
                if opts.crop_px is None:
                    image, lines = frame.image, shelf_label_lines(frame)
                else:
                    # the colour step sees the whole frame at runtime: balance, then cut
                    balanced = replace(frame, image=normalise_colour(frame.image, colour))
                    image, lines = shelf_crop(balanced, opts.crop_px, rng)
                    colour = "none"
                _write_sample(
                    dirs, stem, image, lines, colour=colour, jpeg_quality=opts.jpeg_quality
                )
                images += 1
                boxes += len(lines)
    log.info("shelf dataset split %s: %d images, %d boxes", split, images, boxes)
    return images, boxes


def export_shelf_yolo(
    out_dir: str | Path,
    scenario_paths: Sequence[str | Path],
    *,
    frames_per_camera: int,
    train_seed: int,
    val_seed: int,
    val_frames_per_camera: int | None = None,
    train_lighting: str | Lighting | Sequence[str | Lighting] = "day",
    val_lighting: str | Lighting = "evening",
    cameras: Sequence[str] | None = None,
    empty_fraction: float = 0.15,
    jpeg_quality: int = 90,
    settings: RenderSettings | None = None,
    colour: str = "none",
    crop_px: int | None = None,
) -> YoloExport:
    """Render a YOLO hand dataset from the shelf cameras (classes ``SHELF_CLASSES``).

    As ``export_yolo``: val is held out (its own seed and lighting), train
    lightings are dealt round the scenarios, ``colour`` is written into the
    images. Frames are drawn mostly while someone reaches into the camera's
    face (``1 - empty_fraction`` of them), the rest when nobody does.
    ``crop_px``: write a square of this side around a hand from each frame instead
    of the whole frame (``shelf_crop``: cheaper training at full resolution).
    """
    out = Path(out_dir)
    train_lights, val_light = _checked_splits(
        train_lighting,
        val_lighting,
        train_seed=train_seed,
        val_seed=val_seed,
        colour=colour,
        frames_per_camera=frames_per_camera,
        scenario_paths=scenario_paths,
    )
    if not 0.0 <= empty_fraction <= 1.0:
        raise ValueError(f"empty_fraction must lie in [0, 1], got {empty_fraction}")
    n_val = val_frames_per_camera or max(1, frames_per_camera // 4)
    if crop_px is not None and crop_px < 32:
        raise ValueError(f"crop_px must be at least 32 pixels, got {crop_px}")
    opts = _ShelfOptions(
        settings or SHELF_SETTINGS, cameras, empty_fraction, jpeg_quality, colour, crop_px
    )
    paths = [Path(p) for p in scenario_paths]
    result = YoloExport(out)
    for split, seed, split_lights, n in (
        ("train", train_seed, train_lights, frames_per_camera),
        ("val", val_seed, [val_light], n_val),
    ):
        result.images[split], result.boxes[split] = _export_shelf_split(
            out, split, paths, seed=seed, lightings=split_lights, frames_per_camera=n, opts=opts
        )
    (out / "data.yaml").write_text(
        "# Rendered shelf-camera hand dataset (sim/dataset.py); paths are relative to this\n"
        "# file's folder. hand_holding = a hand and the package in it, one box. val: other seed\n"
        "# and lighting.\n"
        f"train: images/train\nval: images/val\nnc: {len(SHELF_CLASSES)}\n"
        f"names: [{', '.join(SHELF_CLASSES)}]\n",
        encoding="utf-8",
    )
    meta = {
        "kind": "shelf",
        "classes": list(SHELF_CLASSES),
        "scenarios": [p.as_posix() for p in paths],
        "train": {
            "seed": train_seed,
            "lighting": [light.model_dump() for light in train_lights],
            "frames_per_camera": frames_per_camera,
        },
        "val": {"seed": val_seed, "lighting": val_light.model_dump(), "frames_per_camera": n_val},
        "empty_fraction": empty_fraction,
        "colour": colour,
        "crop_px": crop_px,
        "images": result.images,
        "boxes": result.boxes,
    }
    (out / "dataset.json").write_text(
        json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return result
