"""The ``smartstore`` command line.

smartstore demo [--scenario FILE] [--seconds N] [--speed X] [--port P] [--broker URL]
smartstore eval SCENARIO.yaml [--json OUT.json] [--truth TRUTH.json]
smartstore eval SCENARIO.yaml --faults worker-kill,broker-restart,duplicates,reorder [--json OUT]
smartstore check-store STORE.yaml
smartstore bench vision [--json OUT.json] [--cameras N] [--seconds S] [--model-dir DIR]
                        [--source VIDEO|FOLDER]
smartstore topics
smartstore broker-config STORE.yaml OUT_DIR [--service ID=ROLE] [--ca CA --ca-key KEY]
smartstore worker --broker URL --stores FILE... [--partition auto|I/N] [--db TEMPLATE]
smartstore edge --broker URL --store FILE --devices ID,ID...
smartstore bridge-config STORE.yaml OUT.conf --central URL
smartstore bench bus [--stores N] [--workers W] [--seconds S] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from smartstore import broker_config, scale_cli
from smartstore.logs import configure_logging

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[1]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smartstore", description="An open-source walk-out store.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO (default WARNING)")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run a simulated store live, with an HTTP API")
    d.add_argument(
        "--scenario",
        default=str(REPO / "scenarios" / "demo.yaml"),
        help="scenario file (default: scenarios/demo.yaml)",
    )
    d.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stop cleanly after N seconds of wall time (default: when the scenario ends)",
    )
    d.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per wall second (default 1: real time)",
    )
    d.add_argument(
        "--port", type=int, default=8000, help="HTTP port (default 8000; 0: any free port, printed)"
    )
    d.add_argument(
        "--broker",
        default=None,
        help="a real broker: mqtt://HOST:PORT, or locked down mqtts://HOST:8883?ca=CA_FILE"
        "&accounts=CREDENTIALS.json (see `smartstore broker-config`); default: an embedded one",
    )
    d.add_argument(
        "--db",
        default="smartstore-demo.sqlite",
        help="store of record: an SQLite file (its books beside it), or "
        "postgresql://USER@HOST:PORT/DB?schema=NAME (the schema is made afresh each run)",
    )
    d.add_argument(
        "--accounts-out",
        default=None,
        help="where to write the demo's accounts, passwords and gate keys "
        "(default: beside --db, as NAME.accounts.json; owner-readable only)",
    )
    _add_vision_modes(d)
    _add_log_format(d)

    e = sub.add_parser("eval", help="run a scenario in simulated time and score the receipts")
    e.add_argument("scenario", help="scenario file, e.g. scenarios/normal.yaml")
    e.add_argument("--json", dest="json_out", default=None, help="write the metrics as JSON here")
    e.add_argument(
        "--truth",
        default=None,
        help="write the ground truth as JSON here (default: beside --json, as NAME.truth.json)",
    )
    e.add_argument(
        "--db",
        default=None,
        help="keep the ledger here: an SQLite file or postgresql://USER@HOST:PORT/DB[?schema=NAME]",
    )
    e.add_argument(
        "--epcis",
        default=None,
        help="write the run's sales, RFID gate passages and closing stock count here "
        "(GS1 EPCIS 2.0 JSON)",
    )
    e.add_argument("--heatmap", default=None, help="write the run's floor occupancy here as a PNG")
    e.add_argument(
        "--evidence",
        default=None,
        help="keep the cases' camera snapshots (faces blurred) in this folder",
    )
    e.add_argument("--seed", type=int, default=None, help="replace the scenario's seed")
    e.add_argument(
        "--store", default=None, help="replace the scenario's store file (another device layout)"
    )
    e.add_argument("--quiet", action="store_true", help="no progress lines")
    _add_vision_modes(e)
    _add_log_format(e)
    e.add_argument(
        "--camera-fps", type=float, default=5.0, help="rendered ceiling frames per second"
    )
    e.add_argument("--lighting", default="day", help="lighting preset of the rendered cameras")
    e.add_argument("--ceiling-model", default=None, help="manifest of another ceiling person model")
    e.add_argument("--shelf-model", default=None, help="manifest of another shelf hand model")
    e.add_argument(
        "--faults",
        default=None,
        metavar="LIST",
        help="run the store twice through Mosquitto and a worker process, clean and with these "
        "faults (worker-kill,broker-restart,duplicates,reorder), and compare: lost and "
        "double-counted cart lines, receipts against the clean run's. Uses the simulated "
        "positions and the shelves alone; needs mosquitto",
    )
    e.add_argument(
        "--kills", type=int, default=3, help="with --faults worker-kill: how many (default 3)"
    )
    e.add_argument(
        "--keep",
        default=None,
        metavar="DIR",
        help="with --faults: keep both runs' ledgers, worker logs and broker logs here",
    )

    _add_vision_parsers(sub)
    _add_tracking_parser(sub)

    c = sub.add_parser("check-store", help="validate a store file and summarise it")
    c.add_argument("store", help="store file, e.g. stores/demo.yaml")

    sub.add_parser("topics", help="print the MQTT topic table (Markdown)")
    broker_config.add_parser(sub)
    scale_cli.add_worker_parser(sub)
    scale_cli.add_edge_parser(sub)
    scale_cli.add_bridge_parser(sub)
    sub.add_parser("asyncapi", help="print the bus as an AsyncAPI 2.6 document (JSON)")
    return p


def _add_log_format(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="log lines as text (default) or JSON lines for a log shipper; secrets are "
        "redacted either way",
    )


def _add_vision_modes(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--positioning",
        choices=["cameras", "simulated"],
        default="cameras",
        help="who says where shoppers are: the rendered ceiling cameras through the vision "
        "pipeline (default) or the twin's simulated positions (for comparison)",
    )
    p.add_argument(
        "--interactions",
        choices=["cameras", "none"],
        default="cameras",
        help="what hands took: the rendered shelf cameras through the shelf vision pipeline "
        "(default), or none (the shelves alone: the shelves-only mode)",
    )


def _add_tracking_parser(sub: argparse._SubParsersAction) -> None:
    """``eval-tracking``: the ceiling cameras' floor tracks against the twin's truth."""
    t = sub.add_parser(
        "eval-tracking",
        help="score the ceiling cameras' store-level tracks against the twin's true positions",
    )
    t.add_argument("scenario", help="scenario file, e.g. scenarios/busy.yaml")
    t.add_argument(
        "--seconds", type=float, default=None, help="scored window length (default: to the end)"
    )
    t.add_argument(
        "--start", type=float, default=0.0, help="scored window starts this long after opening, s"
    )
    t.add_argument("--seed", type=int, default=None, help="replace the scenario's seed")
    t.add_argument("--lighting", default="day", help="lighting preset of the rendered cameras")
    t.add_argument("--camera-fps", type=float, default=5.0, help="rendered frames per second")
    t.add_argument("--radius", type=float, default=0.5, help="track-to-shopper pairing distance, m")
    t.add_argument("--ceiling-model", default=None, help="manifest of another ceiling model")
    t.add_argument("--json", dest="json_out", default=None, help="write the metrics as JSON here")
    t.add_argument(
        "--frames", default=None, help="also write each step's truth and tracks here (JSON lines)"
    )


def _add_vision_parsers(sub: argparse._SubParsersAction) -> None:
    """Commands for cameras and models: eval-mot, eval-detector, bench, dataset."""
    m = sub.add_parser("eval-mot", help="track MOT-format sequences from det.txt and score them")
    m.add_argument("root", help="folder of MOT sequences, e.g. ../shared/data/mot15")
    m.add_argument("sequences", nargs="*", help="sequence names (default: every one under root)")
    m.add_argument("--json", dest="json_out", default=None, help="write the metrics as JSON here")
    m.add_argument(
        "--detector",
        default=None,
        help="model manifest: detect on the frames instead of reading det/det.txt, and track "
        "with the ceiling service's per-camera settings (models/manifests/ceiling_person.yaml)",
    )
    m.add_argument(
        "--model-dir", default=None, help="folder of the detector's ONNX (default: models/)"
    )
    m.add_argument("--score", type=float, default=0.1, help="detector score threshold")
    m.add_argument(
        "--ignored-rows",
        choices=("drop", "dont-care"),
        default="drop",
        help="ground-truth rows with conf 0: drop (a hypothesis on one is a false positive; "
        "how the public mot15 figures are scored) or dont-care (hypotheses on them are removed "
        "too; the rendered sequences mark people less than 20%% in view so)",
    )

    d2 = sub.add_parser("eval-detector", help="person detection recall on MOT-format frames")
    d2.add_argument("sequence_dirs", nargs="+", help="MOT sequence folders with img1/ and gt/")
    d2.add_argument(
        "--model",
        default=str(REPO / "models" / "manifests" / "yolox_nano.yaml"),
        help="model manifest (default: models/manifests/yolox_nano.yaml)",
    )
    d2.add_argument("--model-dir", required=True, help="folder holding the manifest's ONNX file")
    d2.add_argument("--score", type=float, default=0.3, help="score threshold (default 0.3)")
    d2.add_argument("--max-frames", type=int, default=None, help="score only the first N frames")
    d2.add_argument("--json", dest="json_out", default=None, help="write the figures as JSON here")

    b = sub.add_parser("bench", help="measure how fast a part runs on this machine")
    bench_sub = b.add_subparsers(dest="bench", required=True)
    bv = bench_sub.add_parser(
        "vision",
        help="detector latency and end-to-end camera-frames/s (motion gate, detector, tracker)",
    )
    bv.add_argument("--json", dest="json_out", default=None, help="write the figures as JSON here")
    bv.add_argument("--cameras", type=int, default=8, help="cameras fed at once (default 8)")
    bv.add_argument(
        "--active-cameras",
        type=int,
        default=None,
        help="cameras that see the moving clip; the rest watch a still floor (default: all)",
    )
    bv.add_argument(
        "--seconds", type=float, default=5.0, help="wall seconds per measured variant (default 5)"
    )
    bv.add_argument(
        "--model-dir",
        default=str(REPO.parent / "shared" / "models"),
        help="folder holding the ONNX file (default ../shared/models)",
    )
    bv.add_argument(
        "--model",
        default=str(REPO / "models" / "manifests" / "yolox_nano.yaml"),
        help="model manifest (default: models/manifests/yolox_nano.yaml)",
    )
    bv.add_argument(
        "--source",
        default=None,
        help="video file or image folder (default: shared TUD-Campus mp4, else PETS09 img1)",
    )
    bv.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all)")
    scale_cli.add_bench_bus_parser(bench_sub)

    ds = sub.add_parser("dataset", help="render datasets from the digital twin's cameras")
    ds_sub = ds.add_subparsers(dest="dataset", required=True)
    y = argparse.ArgumentParser(add_help=False)  # the options of `dataset export` and `shelf`
    y.add_argument("out", help="output folder")
    y.add_argument(
        "--scenario",
        nargs="+",
        default=[str(REPO / "scenarios" / "busy.yaml")],
        help="scenario files to render (default: scenarios/busy.yaml)",
    )
    y.add_argument("--frames-per-camera", type=int, default=40, help="train frames per camera")
    y.add_argument("--train-seed", type=int, default=101, help="seed of the train split")
    y.add_argument("--val-seed", type=int, default=202, help="seed of the held-out split")
    y.add_argument(
        "--val-lighting", default="evening", help="lighting preset of the held-out split"
    )
    y.add_argument(
        "--train-lighting",
        default="day",
        help="comma-separated lighting presets dealt round the scenarios (default: day)",
    )
    y.add_argument(
        "--colour",
        default="none",
        choices=["none", "grey_world"],
        help="colour normalisation written into the images; the model's manifest must match",
    )
    ye = ds_sub.add_parser(
        "export", parents=[y], help="YOLO detection dataset; val from another seed and light"
    )
    ye.add_argument(
        "--store",
        default=None,
        help="render in this store file's ceiling cameras (same floor, other mounts)",
    )
    sh = ds_sub.add_parser(
        "shelf", parents=[y], help="YOLO hand/product dataset from the shelf cameras; val held out"
    )
    sh.add_argument(
        "--crop",
        type=int,
        default=None,
        metavar="PX",
        help="write a PX-square crop around a hand from each frame (train at input PX, run the "
        "model on whole frames at full resolution)",
    )
    mo = ds_sub.add_parser("mot", help="one camera's MOT-format sequence with ground truth")
    mo.add_argument("out", help="output folder")
    mo.add_argument("scenario", help="scenario file")
    mo.add_argument("camera", help="camera id, e.g. cam-ceil-02")
    mo.add_argument("seconds", type=float, help="length of the sequence, s")
    mo.add_argument("--seed", type=int, default=None, help="replace the scenario's seed")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(
        getattr(args, "log_format", "text"), logging.INFO if args.verbose else logging.WARNING
    )
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "eval-mot":
            return _eval_mot(args)
        if args.command == "eval-tracking":
            return _eval_tracking(args)
        if args.command == "eval-detector":
            return _eval_detector(args)
        if args.command == "dataset":
            return _dataset(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "topics":
            from iot.topics import topics_markdown

            print(topics_markdown())
            return 0
        if args.command == "broker-config":
            return broker_config.run(args)
        if args.command == "worker":
            return scale_cli.run_worker_command(args)
        if args.command == "edge":
            return scale_cli.run_edge(args)
        if args.command == "bridge-config":
            return scale_cli.run_bridge_config(args)
        if args.command == "asyncapi":
            from iot.asyncapi import asyncapi_document

            print(json.dumps(asyncapi_document(), indent=1))
            return 0
        return _check_store(args)
    except KeyboardInterrupt:
        return 130
    except (ValueError, OSError, ConnectionError) as exc:
        # Store/scenario files and broker URLs are user input: say what was wrong, no traceback.
        print(f"smartstore {args.command}: {exc}", file=sys.stderr)
        return 2


def _demo(args: argparse.Namespace) -> int:
    from smartstore.demo import run_demo

    if args.speed <= 0 or not math.isfinite(args.speed):
        raise ValueError(f"--speed must be a positive number, got {args.speed}")
    run_demo(
        args.scenario,
        broker_url=args.broker,
        seconds=args.seconds,
        speed=args.speed,
        port=args.port,
        db_path=args.db,
        positioning=args.positioning,
        interactions=args.interactions,
        accounts_out=args.accounts_out,
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from smartstore.evaluate import format_table, run_eval

    if args.faults is not None:
        return _eval_faults(args)
    truth = args.truth
    if truth is None and args.json_out:
        truth = str(Path(args.json_out).with_suffix(".truth.json"))
    result = run_eval(
        args.scenario,
        db_path=args.db,
        truth_path=truth,
        seed=args.seed,
        store=args.store,
        progress=None if args.quiet else sys.stderr,
        positioning=args.positioning,
        camera_fps=args.camera_fps,
        lighting=args.lighting,
        interactions=args.interactions,
        epcis_path=args.epcis,
        heatmap_path=args.heatmap,
        evidence_dir=args.evidence,
        models={
            k: v
            for k, v in (("ceiling", args.ceiling_model), ("shelf", args.shelf_model))
            if v is not None
        },
    )
    print(f"scenario {args.scenario}")
    print(format_table(result.metrics))
    if args.json_out:
        payload = {
            **result.metrics,
            "scenario": str(args.scenario),
            "brain": result.brain_stats,
            "cameras": result.cameras,
            "shelf_cameras": result.shelf_cameras,
        }
        Path(args.json_out).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"metrics written to {args.json_out}")
    if truth:
        print(f"ground truth written to {truth}")
    if args.epcis:
        print(f"EPCIS 2.0 document written to {args.epcis}")
    if args.heatmap:
        print(f"heatmap written to {args.heatmap}")
    return 0


def _eval_faults(args: argparse.Namespace) -> int:
    from smartstore.evaluate import format_table
    from smartstore.fault_run import FaultSettings, run_fault_eval
    from smartstore.faults import parse_faults

    faults = parse_faults(args.faults)
    ignored = [
        o for o, v in (("--db", args.db), ("--epcis", args.epcis), ("--heatmap", args.heatmap)) if v
    ]
    if ignored:
        raise ValueError(
            f"{', '.join(ignored)} cannot go with --faults: the fault runs keep their own "
            "ledgers (see them with --keep DIR)"
        )
    if args.kills < 0:
        raise ValueError(f"--kills {args.kills}: give 0 or more")
    if (args.positioning, args.interactions) != ("simulated", "none"):
        print(
            "eval --faults replays the simulated positions and the shelves alone "
            "(as --positioning simulated --interactions none)",
            file=sys.stderr,
        )
    report = run_fault_eval(
        args.scenario,
        faults,
        seed=args.seed,
        store=args.store,
        settings=FaultSettings(kills=args.kills),
        keep_dir=args.keep,
        progress=(lambda line: None) if args.quiet else (lambda line: print(line, file=sys.stderr)),
    )
    flat = {k: v for k, v in report.items() if isinstance(v, (int, float, str))}
    print(f"scenario {args.scenario}, faults {', '.join(sorted(faults))}")
    print(format_table(flat))
    print(f"injected: {json.dumps(report['injected'])}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"report written to {args.json_out}")
    ok = report["lost_lines"] == 0 and report["double_counted_lines"] == 0
    return 0 if ok and report["receipts_match_clean_run"] else 1


MOT_COLUMNS = ("mota", "idf1", "switches", "false_positives", "misses", "precision", "recall")


def _eval_mot(args: argparse.Namespace) -> int:
    from vision.mot import run_eval_mot
    from vision.tracking import TrackerSettings

    detector = None
    settings = TrackerSettings()
    if args.detector:
        from models import load_model
        from vision.ceiling import CeilingSettings
        from vision.detect import OnnxDetector

        model = load_model(args.detector, model_dir=args.model_dir or REPO / "models")
        detector = OnnxDetector.from_model(model, score_threshold=args.score)
        settings = CeilingSettings().camera_tracker
    result = run_eval_mot(
        Path(args.root), args.sequences or None, settings, detector, args.ignored_rows
    )
    keys = MOT_COLUMNS
    print(f"{'sequence':<16}" + "".join(f"{k:>16}" for k in keys))
    rows = {**result["sequences"], "overall": result["overall"]}
    for name, metrics in rows.items():
        cells = "".join(_cell(metrics.get(k)) for k in keys)
        print(f"{name:<16}{cells}")
    print(
        "IDF1 reachable without re-identifying a person who left the view: "
        f"{result['overall']['idf1_ceiling_no_reid']:.3f}"
    )
    _write_json(args.json_out, result)
    return 0


def _eval_tracking(args: argparse.Namespace) -> int:
    from smartstore.cameras import CEILING_MANIFEST
    from smartstore.track_eval import run_track_eval

    result = run_track_eval(
        args.scenario,
        seconds=args.seconds,
        start_offset_s=args.start,
        seed=args.seed,
        lighting=args.lighting,
        fps=args.camera_fps,
        radius_m=args.radius,
        manifest=args.ceiling_model or CEILING_MANIFEST,
        frames_out=args.frames,
    )
    keys = MOT_COLUMNS
    print(f"{'window':<16}" + "".join(f"{k:>16}" for k in keys))
    a, b = result["window_s"]
    print(f"{f'{a:g}-{b:g} s':<16}" + "".join(_cell(result["overall"].get(k)) for k in keys))
    err = result["position_error_m"]
    print(f"position error (paired): median {err['median']} m, p95 {err['p95']} m")
    _write_json(args.json_out, result)
    return 0


def _eval_detector(args: argparse.Namespace) -> int:
    from models import load_model
    from vision.detect import OnnxDetector
    from vision.recall import detection_recall

    model = load_model(args.model, model_dir=args.model_dir)
    detector = OnnxDetector.from_model(model, score_threshold=args.score)
    results = []
    for folder in args.sequence_dirs:
        frames = range(1, args.max_frames + 1) if args.max_frames else None
        r = detection_recall(folder, detector, frames=frames)
        r.pop("per_frame", None)
        results.append(r)
        print(
            f"{r['sequence']:<20} frames {r['frames']:4d}  recall {r['recall']:.3f} "
            f"({r['matched']}/{r['gt']})  precision {r['precision']:.3f}  "
            f"{r['ms_per_image']:.1f} ms/image"
        )
    _write_json(
        args.json_out, {"model": model.manifest.name, "score": args.score, "sequences": results}
    )
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.bench == "bus":
        return scale_cli.run_bench_bus(args)
    from smartstore.bench import run_vision_bench

    report = run_vision_bench(
        cameras=args.cameras,
        seconds=args.seconds,
        model_dir=args.model_dir,
        manifest=args.model,
        source=args.source,
        active_cameras=args.active_cameras,
        threads=args.threads,
        progress=lambda line: print(line, file=sys.stderr),
    )
    print(f"{'detector':<14}{'ms/frame':>10}{'p95 ms':>10}{'frames/s':>10}")
    for name, v in report["detector_variants"].items():
        if v["available"]:
            print(f"{name:<14}{v['mean_ms']:>10.1f}{v['p95_ms']:>10.1f}{v['frames_per_s']:>10.1f}")
        else:
            print(f"{name:<14}  unavailable: {v['reason']}")
    print(f"\nend to end, {report['cameras']} cameras ({report['active_cameras']} active):")
    for name, r in report["end_to_end"].items():
        stages = " ".join(f"{k} {v:.2f}" for k, v in r["stage_ms_per_camera_frame"].items())
        print(
            f"{name:<16}{r['camera_fps_end_to_end']:>8.1f} camera-frames/s  detector on "
            f"{r['detector_share']:>4.0%}  ms/camera-frame: {stages}"
        )
    print(
        f"best {report['best_configuration']}: {report['camera_fps_end_to_end']:.1f} "
        f"camera-frames/s (target {report['target_camera_fps']:.0f}); "
        f"peak RSS {report['peak_rss_mb']:.0f} MiB"
    )
    _write_json(args.json_out, report)
    return 0


def _dataset(args: argparse.Namespace) -> int:
    from sim.dataset import export_mot, export_shelf_yolo, export_yolo

    if args.dataset in ("export", "shelf"):
        export = export_yolo if args.dataset == "export" else export_shelf_yolo
        done = export(
            args.out,
            args.scenario,
            frames_per_camera=args.frames_per_camera,
            train_seed=args.train_seed,
            val_seed=args.val_seed,
            train_lighting=[x.strip() for x in args.train_lighting.split(",") if x.strip()],
            val_lighting=args.val_lighting,
            colour=args.colour,
            **({"crop_px": args.crop} if args.dataset == "shelf" else {"store": args.store}),
        )
        print(f"YOLO dataset at {done.out_dir}: images {done.images}, boxes {done.boxes}")
        return 0
    seq = export_mot(args.out, args.scenario, args.camera, args.seconds, seed=args.seed)
    print(f"MOT sequence at {seq.out_dir}: {seq.frames} frames, {seq.gt_rows} ground-truth rows")
    return 0


def _cell(value: object) -> str:
    return f"{value:>16.3f}" if isinstance(value, float) else f"{value!s:>16}"


def _write_json(path: str | None, payload: object) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"written to {path}")


def _check_store(args: argparse.Namespace) -> int:
    from iot.store import load_store

    store = load_store(args.store)
    print(
        f"{args.store}: store {store.store_id!r} is valid: {len(store.gondolas)} gondolas, "
        f"{len(store.plates())} plates, {len(store.items)} SKUs, "
        f"{len(store.devices.shelf_controllers)} shelf controllers"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
