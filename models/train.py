"""Training recipe for the ceiling-camera person detector (issue 3).

The twin's rendered shoppers (stylised figures seen from 3.4 m above) are not
what COCO detectors learned, so the ceiling model is trained from scratch on
frames the twin renders (``smartstore dataset export``). The recipe is plain
ultralytics YOLO at a small input, on CPU, with nothing downloaded at run time:
the network comes from a model YAML (no pretrained weights), AMP is off (its
check downloads a model), plots are off (they download a font).

Training needs the optional training environment (torch + ultralytics), kept
apart from the runtime venv::

    python3 -m venv .venv-train
    .venv-train/bin/pip install torch==2.14.1 torchvision==0.29.1
    .venv-train/bin/pip install --no-deps ultralytics ultralytics-thop
    .venv-train/bin/pip install numpy matplotlib pillow pyyaml requests scipy psutil \\
        polars 'opencv-python-headless<5' onnx

Then, from the repository root::

    .venv/bin/smartstore dataset export runs/ceiling-ds --frames-per-camera 60
    .venv-train/bin/python -m models.train --data runs/ceiling-ds/data.yaml \\
        --epochs 30 --imgsz 320 --out runs/train

It writes ``<out>/<name>/weights/best.pt`` (never commit it) and
``<out>/<name>/weights/best.onnx``; measure the ONNX with OUR runtime
(``.venv/bin/python -m vision.metrics``) before shipping it with a manifest.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TrainResult", "TrainSettings", "export_onnx", "main", "train"]

log = logging.getLogger(__name__)

_INSTALL_HINT = (
    "ultralytics (and torch) are not installed in this interpreter; training runs in a "
    "separate venv: see the module docstring of models/train.py (python3 -m venv "
    ".venv-train && .venv-train/bin/pip install torch==2.14.1 torchvision==0.29.1 && "
    ".venv-train/bin/pip install --no-deps ultralytics ultralytics-thop ...)"
)


@dataclass(frozen=True)
class TrainSettings:
    """One training run's knobs; the defaults are the recipe that shipped."""

    data_yaml: Path
    out_dir: Path = Path("runs/train")
    name: str = "ceiling_person"
    model_yaml: str = "yolov8n.yaml"  # scratch network, scale n; no weights fetched
    epochs: int = 30
    imgsz: int = 320
    batch: int = 16
    seed: int = 0
    workers: int = 0  # data loading in the main process: 2-core CPU machine
    patience: int = 100
    mosaic: float = 1.0
    close_mosaic: int = 5
    # Colour jitter: the held-out split is lit warmer and dimmer than train; a wide hue
    # and value jitter keeps the model from learning the train lighting's colours.
    hsv_h: float = 0.1
    hsv_s: float = 0.7
    hsv_v: float = 0.5
    # a ceiling camera has no "up"; a shelf camera does (arms come from the aisle below)
    flipud: float = 0.5


@dataclass(frozen=True)
class TrainResult:
    """Where the weights went and what training itself reported."""

    best_pt: Path
    onnx: Path | None
    seconds: float
    seconds_per_epoch: float
    val_map50: float | None  # ultralytics' own figure (101-point, its NMS); ours is separate


def _offline_env(out_dir: Path) -> None:
    """Keep ultralytics from reaching the network or writing to the home folder."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str((out_dir / ".ultralytics").resolve()))
    os.environ.setdefault("WANDB_DISABLED", "true")


def _yolo() -> Any:
    try:
        from ultralytics import YOLO
    except ImportError as exc:
        raise SystemExit(_INSTALL_HINT) from exc
    return YOLO


def train(settings: TrainSettings) -> TrainResult:
    """Train from scratch on CPU and return where the best weights are."""
    _offline_env(settings.out_dir)
    if not settings.data_yaml.is_file():
        raise FileNotFoundError(
            f"dataset {settings.data_yaml} not found; make it with "
            "`.venv/bin/smartstore dataset export runs/ceiling-ds --frames-per-camera 60`"
        )
    model = _yolo()(settings.model_yaml)
    started = time.monotonic()
    model.train(
        data=str(settings.data_yaml.resolve()),
        epochs=settings.epochs,
        imgsz=settings.imgsz,
        batch=settings.batch,
        device="cpu",
        workers=settings.workers,
        # a .pt is an earlier stage of ours: keep its weights (ultralytics drops them on
        # pretrained=False); a YAML starts from scratch, nothing is fetched either way
        pretrained=settings.model_yaml.endswith(".pt"),
        amp=False,
        plots=False,
        seed=settings.seed,
        deterministic=True,
        patience=settings.patience,
        mosaic=settings.mosaic,
        close_mosaic=settings.close_mosaic,
        hsv_h=settings.hsv_h,
        hsv_s=settings.hsv_s,
        hsv_v=settings.hsv_v,
        # the twin's cameras look straight down: any flip is a plausible view
        flipud=settings.flipud,
        fliplr=0.5,
        project=str(settings.out_dir.resolve()),
        name=settings.name,
        exist_ok=True,
        verbose=False,
    )
    seconds = time.monotonic() - started
    weights = settings.out_dir / settings.name / "weights"
    best = weights / "best.pt"
    if not best.is_file():
        best = weights / "last.pt"
    metrics = getattr(getattr(model, "trainer", None), "metrics", None) or {}
    map50 = metrics.get("metrics/mAP50(B)")
    return TrainResult(
        best_pt=best,
        onnx=None,
        seconds=seconds,
        seconds_per_epoch=seconds / max(1, settings.epochs),
        val_map50=float(map50) if map50 is not None else None,
    )


def export_onnx(weights: Path, imgsz: int, dest: Path | None = None, dynamic: bool = True) -> Path:
    """Export weights to ONNX (opset default, no simplifier: it would be fetched).

    ``dynamic`` gives a model whose input side may differ from ``imgsz``; the
    runtime still feeds it ``imgsz`` (the manifest's ``input_size``).
    """
    model = _yolo()(str(weights))
    path = Path(
        model.export(format="onnx", imgsz=imgsz, dynamic=dynamic, simplify=False, device="cpu")
    )
    if dest is not None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        path = dest
    return path


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="YOLO data.yaml")
    p.add_argument("--epochs", type=int, default=TrainSettings.epochs)
    p.add_argument("--imgsz", type=int, default=TrainSettings.imgsz)
    p.add_argument("--batch", type=int, default=TrainSettings.batch)
    p.add_argument(
        "--model",
        default=TrainSettings.model_yaml,
        help="ultralytics model YAML (scratch) or a .pt of an earlier stage (fine-tune)",
    )
    p.add_argument("--hsv-h", type=float, default=TrainSettings.hsv_h, help="hue jitter")
    p.add_argument("--seed", type=int, default=TrainSettings.seed)
    p.add_argument(
        "--flipud", type=float, default=TrainSettings.flipud, help="up-down flip probability"
    )
    p.add_argument("--out", type=Path, default=TrainSettings.out_dir)
    p.add_argument("--name", default=TrainSettings.name)
    p.add_argument("--onnx", type=Path, default=None, help="also copy the ONNX export here")
    p.add_argument("--static", action="store_true", help="fixed input size in the ONNX")
    p.add_argument(
        "--export-only", type=Path, default=None, help="skip training; export these weights"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """CLI: train, export ONNX, print the figures."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parse(argv)
    _offline_env(args.out)
    if args.export_only is not None:
        path = export_onnx(args.export_only, args.imgsz, args.onnx, dynamic=not args.static)
        log.info("exported %s", path)
        return 0
    settings = TrainSettings(
        data_yaml=args.data,
        out_dir=args.out,
        name=args.name,
        model_yaml=args.model,
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        seed=args.seed,
        hsv_h=args.hsv_h,
        flipud=args.flipud,
    )
    result = train(settings)
    onnx = export_onnx(result.best_pt, settings.imgsz, args.onnx, dynamic=not args.static)
    log.info(
        "trained %d epochs in %.0f s (%.1f s/epoch); best %s; ultralytics val mAP50 %s; onnx %s",
        settings.epochs,
        result.seconds,
        result.seconds_per_epoch,
        result.best_pt,
        result.val_map50,
        onnx,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
