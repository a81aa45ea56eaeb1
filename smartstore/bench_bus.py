"""``smartstore bench bus``: N stores' event traffic through one broker into W checkout workers.

What it measures, on this machine, for the scale-out of docs/reliability.md:

1. **traffic**: each store replays the busy twin's central events (gate
   scans, track batches, settled shelf events; never raw samples), recorded
   once per seed (``smartstore.bus_traffic``). Stores cycle over ``seeds``
   recordings and start at different points of them, so their bursts do not
   line up. Each store is first fast-forwarded through ``warmup_s`` of its
   scenario (not measured: it fills the stores with shoppers), then replayed
   for ``seconds`` of wall time at ``speed`` x real time.
2. **workers**: W ``smartstore worker`` processes of one pool, each given
   every store file. The bench starts measuring once every store is claimed
   by exactly one worker.
3. **latency**: a shelf event is decided once event time has passed it by
   the brain's ``attribution_delay_s`` (on purpose: the tracks around it must
   arrive first). Its *fusion latency* is the wall time from the moment it
   could be decided (the later of its own publication and that of the first
   message of its store stamped at or past its due time) to the moment its
   ``ShelfOutcome`` is seen on the bus. A scan-in's latency is from its
   publication to its session's ``open`` being seen.
4. **placement**: which worker each store's decisions came from (the topic
   names the worker), and each worker's own count of the events it handled.
5. **CPU**: each worker process's CPU seconds over the measured window
   (``/proc``), and CPU seconds per thousand events.

The bench starts a private Mosquitto on a free port unless ``broker`` names
one (which must speak MQTT 5). A benchmark reports wall time by nature;
nothing here feeds a store decision.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from checkout.settings import BrainSettings
from iot.mqtt import MqttTransport
from iot.payloads import DeviceStatus
from sim.scenario import load_scenario_as
from smartstore.bus_report import Seen, StoreRun, print_report
from smartstore.bus_report import report as make_report
from smartstore.bus_traffic import (
    Recorded,
    free_port,
    listening,
    record_traffic,
    store_file_as,
)
from smartstore.worker import claim_topic

__all__ = ["BUSY", "BusBench", "print_report", "run_bus_bench"]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
BUSY = REPO / "scenarios" / "busy.yaml"
DEFAULT_CACHE = REPO / "out" / "bench-bus-cache"
_PHASE_S = 9.0  # scenario seconds between the starts of two stores on the same recording
_CONVERGE_S = 90.0
_DRAIN_S = 180.0
_STABLE_S = 1.0


@dataclass(frozen=True)
class BusBench:
    """The bench's settings (``smartstore bench bus`` options)."""

    stores: int = 20
    workers: int = 1
    seconds: float = 60.0
    speed: float = 1.0
    warmup_s: float = 90.0
    seeds: int = 4
    broker: str | None = None
    scenario: Path = BUSY
    cache_dir: Path | None = DEFAULT_CACHE
    settle_s: float = 2.0  # each worker listens to the pool this long before claiming

    def check(self) -> None:
        if not 1 <= self.stores <= 500:
            raise ValueError(f"--stores {self.stores}: give 1..500")
        if not 1 <= self.workers <= 64:
            raise ValueError(f"--workers {self.workers}: give 1..64")
        if not 1.0 <= self.seconds <= 3600.0:
            raise ValueError(f"--seconds {self.seconds}: give 1..3600 s of measured wall time")
        if not 0.1 <= self.speed <= 100.0:
            raise ValueError(f"--speed {self.speed}: give 0.1..100 x real time")
        if self.warmup_s < 0 or not 1 <= self.seeds <= 64:
            raise ValueError("--warmup must be >= 0 and --seeds 1..64")


def run_bus_bench(
    bench: BusBench, *, progress: Callable[[str], None] = lambda line: None
) -> dict[str, object]:
    """Run the bench and return its report (see the module docstring for each figure)."""
    bench.check()
    load_before = os.getloadavg()
    traffic, start_s = _traffic(bench, progress)
    run = f"bb{uuid.uuid4().hex[:6]}"
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="smartstore-bench-")))
        url = bench.broker or stack.enter_context(_private_mosquitto(tmp))
        stores = _plan_stores(bench, run, traffic, start_s)
        files = [store_file_as(_store_path(bench), s.sid, tmp / f"{s.sid}.yaml") for s in stores]
        seen = Seen()
        observer = _observer(url, run, seen)
        stack.callback(observer.close)
        procs = _start_workers(bench, url, run, files, tmp)
        stack.callback(_stop_workers, procs)
        progress(f"{bench.workers} worker(s) starting for {bench.stores} stores on {url}")
        owners = _converge(seen, stores, bench.workers, procs, tmp)
        progress("every store is claimed by one worker; warming up")
        publisher = MqttTransport(url, f"{run}-publisher", connect_timeout_s=10)
        stack.callback(publisher.close)
        _warm_up(publisher, stores)
        _drain(stores, procs, tmp)
        progress(f"measuring {bench.seconds:g} s at x{bench.speed:g}")
        cpu0 = {w: _cpu_s(p.pid) for w, p in procs.items()}
        wall0, wall1 = _replay(publisher, stores, bench.speed)
        cpu1 = {w: _cpu_s(p.pid) for w, p in procs.items()}
        publisher.flush(5.0)
        time.sleep(1.0 + BrainSettings().attribution_delay_s)  # the last decisions in flight
        owners_after = _owners(seen, stores)
        _stop_workers(procs)
        stats = {w: _read_json(tmp / f"{w}.json") for w in procs}
    report = make_report(bench, stores, seen, stats=stats, walls=(wall0, wall1), cpus=(cpu0, cpu1))
    report["claims_before"] = owners
    report["claims_moved_during_run"] = sorted(
        s for s in owners if owners_after.get(s) != owners[s]
    )
    report["load_average_1m"] = {"before": round(load_before[0], 2), "after": _load1()}
    report["cpus"] = os.cpu_count()
    return report


# --- traffic ---


def _store_path(bench: BusBench) -> Path:
    return Path(load_scenario_as(bench.scenario).store)


def _traffic(
    bench: BusBench, progress: Callable[[str], None]
) -> tuple[list[list[Recorded]], float]:
    base = load_scenario_as(bench.scenario).seed
    out = []
    start_s = 0.0
    for k in range(min(bench.seeds, bench.stores)):
        t0 = time.perf_counter()
        messages, start_s = record_traffic(bench.scenario, base + k, bench.cache_dir)
        took = time.perf_counter() - t0
        if took > 1.0:
            progress(f"recorded seed {base + k}: {len(messages)} messages in {took:.1f} s")
        out.append(messages)
    return out, start_s


def _plan_stores(
    bench: BusBench, run: str, traffic: list[list[Recorded]], start_s: float
) -> list[StoreRun]:
    stores = []
    span_s = bench.seconds * bench.speed
    for k in range(bench.stores):
        messages = traffic[k % len(traffic)]
        begin = start_s + bench.warmup_s + _PHASE_S * (k // len(traffic))
        warm = [m for m in messages if m.send_s < begin]
        window = [m for m in messages if begin <= m.send_s < begin + span_s]
        stores.append(StoreRun(f"{run}-s{k:02d}", messages, warm, window))
    return stores


# --- processes and the broker ---


@contextmanager
def _private_mosquitto(tmp: Path) -> Iterator[str]:
    """A Mosquitto of the bench's own on a free loopback port (MQTT 5, no Nagle delay)."""
    exe = shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if exe is None:
        raise OSError(
            "the bench needs Mosquitto (apt-get install mosquitto), or --broker URL of a "
            "broker that speaks MQTT 5"
        )
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "set_tcp_nodelay true\nmax_queued_messages 100000\nlog_dest none\n"
    )
    proc = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10.0
        while not listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise OSError(f"Mosquitto did not start on port {port}: {err.strip()[-400:]}")
            time.sleep(0.05)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def _start_workers(
    bench: BusBench, url: str, run: str, files: list[Path], tmp: Path
) -> dict[str, subprocess.Popen[bytes]]:
    procs = {}
    for i in range(bench.workers):
        wid = f"w{i + 1}"
        cmd = [
            *(sys.executable, "-m", "smartstore", "worker", "--broker", url),
            *("--pool", run, "--id", wid, "--settle", str(bench.settle_s)),
            *("--db", str(tmp / "ledgers" / "{store}.sqlite")),
            *("--stats-out", str(tmp / f"{wid}.json"), "--stores"),
            *map(str, files),
        ]
        log_file = (tmp / f"{wid}.log").open("wb")
        procs[wid] = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO)
    return procs


def _stop_workers(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux ``/proc``), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load1() -> float:
    return round(os.getloadavg()[0], 2)


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- the bus ---


def _observer(url: str, run: str, seen: Seen) -> MqttTransport:
    """Hears claims, outcomes and sessions of the bench's stores, stamping each on arrival."""
    tx = MqttTransport(url, f"{run}-observer", connect_timeout_s=10)
    prefix = f"smartstore/{run}-"

    def stamp(into: list[tuple[float, str, bytes]]) -> Callable[[str, bytes], None]:
        def keep(topic: str, data: bytes) -> None:
            if topic.startswith(prefix):
                into.append((time.perf_counter(), topic, data))

        return keep

    def claim(topic: str, data: bytes) -> None:
        if not topic.startswith(prefix):
            return
        try:
            status = DeviceStatus.model_validate_json(data)
        except ValueError:
            return
        with seen.lock:
            seen.claims[topic.split("/")[1]][status.device_id] = status.state

    tx.subscribe(claim_topic("+"), claim, 1)
    tx.subscribe("smartstore/+/brain/+/outcomes", stamp(seen.outcomes), 1)
    tx.subscribe("smartstore/+/brain/+/sessions", stamp(seen.sessions), 1)
    return tx


def _owners(seen: Seen, stores: list[StoreRun]) -> dict[str, list[str]]:
    with seen.lock:
        return {
            s.sid: sorted(w for w, st in seen.claims.get(s.sid, {}).items() if st == "online")
            for s in stores
        }


def _converge(
    seen: Seen,
    stores: list[StoreRun],
    workers: int,
    procs: dict[str, subprocess.Popen[bytes]],
    tmp: Path,
) -> dict[str, list[str]]:
    """Wait until each store has exactly one claimant and every worker has its share."""
    deadline = time.monotonic() + _CONVERGE_S
    stable_since: float | None = None
    last: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        dead = [w for w, p in procs.items() if p.poll() is not None]
        if dead:
            tail = (tmp / f"{dead[0]}.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"worker {dead[0]} exited early:\n{tail}")
        owners = _owners(seen, stores)
        busy = {w for ws in owners.values() for w in ws}
        ok = all(len(ws) == 1 for ws in owners.values()) and len(busy) == min(workers, len(stores))
        if ok and owners == last:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= _STABLE_S:
                return owners
        else:
            stable_since = None
        last = owners
        time.sleep(0.1)
    raise RuntimeError(
        f"stores not claimed by exactly one of {workers} worker(s) within {_CONVERGE_S:g} s: "
        f"{ {s: w for s, w in last.items() if len(w) != 1} }"
    )


def _warm_up(publisher: MqttTransport, stores: list[StoreRun]) -> None:
    """Publish each store's traffic before its window as fast as the broker takes it."""
    merged = sorted((m.send_s, k, i) for k, s in enumerate(stores) for i, m in enumerate(s.warm))
    for _, k, i in merged:
        m = stores[k].warm[i]
        publisher.publish(m.topic(stores[k].sid), m.data, m.qos, False)
    publisher.flush(30.0)


def _drain(stores: list[StoreRun], procs: dict[str, subprocess.Popen[bytes]], tmp: Path) -> None:
    """Wait until the workers have handled every warm-up message (their own counts say so)."""
    want = {s.sid: len(s.warm) for s in stores}
    deadline = time.monotonic() + _DRAIN_S
    got: Counter[str] = Counter()
    while time.monotonic() < deadline:
        got = Counter()
        for wid in procs:
            by_store = _read_json(tmp / f"{wid}.json").get("events_by_store", {})
            if isinstance(by_store, dict):
                got.update({k: int(v) for k, v in by_store.items() if isinstance(v, int)})
        if all(got[sid] >= n for sid, n in want.items()):
            return
        time.sleep(0.2)
    behind = {sid: f"{got[sid]}/{n}" for sid, n in want.items() if got[sid] < n}
    raise RuntimeError(
        f"the workers did not handle the warm-up within {_DRAIN_S:g} s: {behind}; "
        "give a shorter --warmup or more --workers"
    )


def _replay(publisher: MqttTransport, stores: list[StoreRun], speed: float) -> tuple[float, float]:
    """Publish every store's window at ``speed`` x its send times; returns the wall span."""
    schedule = sorted(
        (
            (m.send_s - s.window[0].send_s) / speed,
            k,
            i,
        )
        for k, s in enumerate(stores)
        if s.window
        for i, m in enumerate(s.window)
    )
    for s in stores:
        s.published = [0.0] * len(s.window)
    wall0 = time.perf_counter()
    for offset, k, i in schedule:
        due = wall0 + offset
        wait = due - time.perf_counter()
        if wait > 0.0005:
            time.sleep(wait)
        s = stores[k]
        m = s.window[i]
        s.published[i] = time.perf_counter()
        publisher.publish(m.topic(s.sid), m.data, m.qos, False)
    return wall0, time.perf_counter()
