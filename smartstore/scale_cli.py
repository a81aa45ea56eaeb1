"""The scale-out commands' options: ``worker``, ``edge``, ``bridge-config`` and ``bench bus``.

Kept apart from ``smartstore.cli`` so that file stays a table of commands;
each ``run_*`` imports its composition root only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = [
    "add_bench_bus_parser",
    "add_bridge_parser",
    "add_edge_parser",
    "add_worker_parser",
    "run_bench_bus",
    "run_bridge_config",
    "run_edge",
    "run_worker_command",
]

_BROKER_HELP = (
    "the broker: mqtt://HOST:PORT, or mqtts://HOST:8883?ca=CA_FILE&accounts=CREDENTIALS.json"
)


def add_worker_parser(sub: argparse._SubParsersAction) -> None:
    w = sub.add_parser(
        "worker",
        help="run one checkout worker of a pool: the store brains of the stores it owns",
    )
    w.add_argument("--broker", required=True, help=_BROKER_HELP + " (MQTT 5)")
    w.add_argument(
        "--stores", nargs="+", required=True, metavar="FILE", help="every store file of the pool"
    )
    w.add_argument("--id", dest="worker_id", default=None, help="worker id (default HOST-PID)")
    w.add_argument("--pool", default="chain", help="the pool's name (default chain)")
    w.add_argument(
        "--partition",
        default="auto",
        help="auto (default): share the stores with the pool's live workers and take over a "
        "dead worker's; or I/N: always run share I of N fixed slots, no takeover",
    )
    w.add_argument(
        "--db",
        default="smartstore-{store}.sqlite",
        help="each store's ledger, {store} replaced by its id: an SQLite file, or "
        "postgresql://USER@HOST/DB?schema=ledger_{store}; workers that take over each other's "
        "stores must reach the same ledgers (default smartstore-{store}.sqlite)",
    )
    w.add_argument("--stats-out", default=None, help="keep this worker's counters here (JSON)")
    w.add_argument(
        "--settle",
        type=float,
        default=1.0,
        help="seconds to listen to the pool before claiming stores (default 1)",
    )
    w.add_argument("--seconds", type=float, default=None, help="stop after N wall seconds")
    w.add_argument(
        "--session-expiry",
        type=int,
        default=0,
        metavar="SECONDS",
        help="keep the worker's MQTT session this long after a crash, so the broker queues "
        "its stores' events until it is restarted with the same --id (default 0: a clean "
        "session, shared groups); see docs/reliability.md, Crash safety",
    )


def run_worker_command(args: argparse.Namespace) -> int:
    from smartstore.partitions import parse_slot
    from smartstore.worker import run_worker

    run_worker(
        args.broker,
        args.stores,
        worker_id=args.worker_id,
        pool=args.pool,
        slot=parse_slot(args.partition),
        db=args.db,
        stats_out=args.stats_out,
        settle_s=args.settle,
        seconds=args.seconds,
        out=sys.stdout,
        session_expiry_s=args.session_expiry,
    )
    return 0


def add_edge_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "edge",
        help="run the device adapters (shelf controllers, RFID gate readers) of some devices",
    )
    e.add_argument("--broker", required=True, help=_BROKER_HELP)
    e.add_argument("--store", required=True, help="the store file")
    e.add_argument(
        "--devices",
        required=True,
        help="comma-separated ids of the shelf controllers and RFID readers this node serves",
    )
    e.add_argument("--id", dest="edge_id", default=None, help="edge id (default edge-HOST-PID)")
    e.add_argument("--seconds", type=float, default=None, help="stop after N wall seconds")


def run_edge(args: argparse.Namespace) -> int:
    from smartstore.edge import run_edge_node

    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    run_edge_node(
        args.broker,
        args.store,
        devices,
        edge_id=args.edge_id,
        seconds=args.seconds,
        out=sys.stdout,
    )
    return 0


def add_bridge_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser(
        "bridge-config",
        help="write a Mosquitto bridge that forwards a store's events (not raw samples) to a "
        "central broker",
    )
    b.add_argument("store", help="store file")
    b.add_argument("out", help="file to write (include it from the store broker's config)")
    b.add_argument(
        "--central",
        required=True,
        help="the central broker: mqtt://HOST:PORT or mqtts://USER:PASSWORD@HOST:8883?ca=CA",
    )
    b.add_argument("--name", default=None, help="bridge connection name (default STORE-central)")
    b.add_argument(
        "--no-return",
        action="store_true",
        help="forward events out only; do not bring the workers' carts, receipts and "
        "alerts back to the store's broker",
    )


def run_bridge_config(args: argparse.Namespace) -> int:
    from iot.store import load_store
    from smartstore.bridge import write_bridge_config

    store = load_store(args.store)
    path = write_bridge_config(
        store, args.out, central_url=args.central, name=args.name, inbound=not args.no_return
    )
    print(f"bridge for store {store.store_id!r} written to {path}")
    print(f"  add to the store broker's mosquitto.conf:  include_dir {Path(path).parent}")
    return 0


def add_bench_bus_parser(bench_sub: argparse._SubParsersAction) -> None:
    bb = bench_sub.add_parser(
        "bus",
        help="N simulated stores' events through one broker into W checkout workers: "
        "events/s, fusion latency p50/p99, events per worker, CPU per 1000 events",
    )
    bb.add_argument("--stores", type=int, default=20, help="simulated stores (default 20)")
    bb.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    bb.add_argument(
        "--seconds", type=float, default=60.0, help="measured wall seconds (default 60)"
    )
    bb.add_argument(
        "--speed", type=float, default=1.0, help="x the scenario's real event rate (default 1)"
    )
    bb.add_argument(
        "--warmup",
        type=float,
        default=90.0,
        help="scenario seconds fast-forwarded first, unmeasured, to fill the stores (default 90)",
    )
    bb.add_argument(
        "--seeds", type=int, default=4, help="distinct twin recordings the stores cycle over"
    )
    bb.add_argument(
        "--broker",
        default=None,
        help="an MQTT 5 broker URL (default: a private Mosquitto on a free port)",
    )
    bb.add_argument("--scenario", default=None, help="scenario (default scenarios/busy.yaml)")
    bb.add_argument("--json", dest="json_out", default=None, help="write the figures as JSON here")


def run_bench_bus(args: argparse.Namespace) -> int:
    from smartstore.bench_bus import BUSY, BusBench, print_report, run_bus_bench

    bench = BusBench(
        stores=args.stores,
        workers=args.workers,
        seconds=args.seconds,
        speed=args.speed,
        warmup_s=args.warmup,
        seeds=args.seeds,
        broker=args.broker,
        scenario=Path(args.scenario) if args.scenario else BUSY,
    )
    report = run_bus_bench(bench, progress=lambda line: print(line, file=sys.stderr, flush=True))
    print_report(report)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"written to {args.json_out}")
    return 0
