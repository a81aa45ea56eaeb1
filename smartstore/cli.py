"""The ``smartstore`` command line.

smartstore demo [--scenario FILE] [--seconds N] [--speed X] [--port P] [--broker URL]
smartstore eval SCENARIO.yaml [--json OUT.json] [--truth TRUTH.json]
smartstore check-store STORE.yaml
smartstore topics
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

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
    d.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    d.add_argument(
        "--broker",
        default=None,
        help="mqtt://host:port of a real broker (default: start an embedded one)",
    )
    d.add_argument("--db", default="smartstore-demo.sqlite", help="SQLite ledger file")

    e = sub.add_parser("eval", help="run a scenario in simulated time and score the receipts")
    e.add_argument("scenario", help="scenario file, e.g. scenarios/normal.yaml")
    e.add_argument("--json", dest="json_out", default=None, help="write the metrics as JSON here")
    e.add_argument(
        "--truth",
        default=None,
        help="write the ground truth as JSON here (default: beside --json, as NAME.truth.json)",
    )
    e.add_argument("--db", default=None, help="keep the SQLite ledger in this file")
    e.add_argument("--seed", type=int, default=None, help="replace the scenario's seed")
    e.add_argument("--quiet", action="store_true", help="no progress lines")

    c = sub.add_parser("check-store", help="validate a store file and summarise it")
    c.add_argument("store", help="store file, e.g. stores/demo.yaml")

    sub.add_parser("topics", help="print the MQTT topic table (Markdown)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "topics":
            from iot.topics import topics_markdown

            print(topics_markdown())
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
    )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from smartstore.evaluate import format_table, run_eval

    truth = args.truth
    if truth is None and args.json_out:
        truth = str(Path(args.json_out).with_suffix(".truth.json"))
    result = run_eval(
        args.scenario,
        db_path=args.db,
        truth_path=truth,
        seed=args.seed,
        progress=None if args.quiet else sys.stderr,
    )
    print(f"scenario {args.scenario}")
    print(format_table(result.metrics))
    if args.json_out:
        payload = {**result.metrics, "scenario": str(args.scenario), "brain": result.brain_stats}
        Path(args.json_out).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"metrics written to {args.json_out}")
    if truth:
        print(f"ground truth written to {truth}")
    return 0


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
