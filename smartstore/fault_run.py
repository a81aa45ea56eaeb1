"""``smartstore eval --faults``: the same store run twice, clean and under faults, compared.

Both runs replay one recording of the scenario's central traffic (what a
store's edge sends the checkout workers: scan-ins, exits, track batches,
settled shelf events; the twin and its shelf adapter run once, in this
process) through a private Mosquitto into a ``smartstore worker``
subprocess, whose ledger is an SQLite file. Like is compared with like: the
clean run goes the same way, without faults. Then the faulty run's cart
lines and receipts are compared with the clean run's
(``smartstore.faults.compare_runs``) and both are scored against the twin's
truth.

The faults, as ``--faults`` names them:

- ``worker-kill``: ``SIGKILL`` of the worker at seeded moments while visits
  are open, once the worker's journal shows it has received that far; the
  worker is restarted with the same id after ``restart_delay_s`` (its MQTT
  session kept meanwhile by the broker), while the devices go on sending;
- ``broker-restart``: Mosquitto stopped (it saves its sessions: persistence
  on) and started again on the same port, once, mid-visit; the device side
  waits for its connection to come back (QoS 1 messages in flight are resent
  by the client), the worker reconnects to its kept session;
- ``duplicates``, ``reorder``: ``FaultInjector`` between the devices and the
  broker.

Event time drives the store: the worker ticks its brain from the track
batches' time stamps. Publishing is paced on the worker's journal so that
the devices run at most ``lag_s`` of event time ahead of what the worker has
received; the wall clock only paces and times out, it never decides.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from checkout.ledger import Ledger
from iot.mqtt import MqttTransport
from iot.payloads import DeviceStatus, Receipt
from iot.topics import TOPICS
from sim.scenario import load_scenario_as
from sim.scoring import TrueVisit, score
from smartstore.bus_traffic import Recorded, free_port, listening, record_central
from smartstore.faults import (
    FaultInjector,
    Outgoing,
    RunRecord,
    choose_moments,
    compare_runs,
    summarize_receipts,
)
from smartstore.worker import claim_topic

__all__ = ["FaultSettings", "PrivateMosquitto", "Traffic", "record", "run_fault_eval"]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
_STEP_S = 0.1  # event time per twin step while recording (as smartstore eval steps)
_POLL_S = 0.005
_SESSION_EXPIRY_S = 600


@dataclass(frozen=True)
class FaultSettings:
    """How hard to hit the store (``--faults`` picks which faults)."""

    kills: int = 3
    duplicate_rate: float = 0.05
    reorder_rate: float = 0.05
    lag_s: float = 10.0  # event time the devices may run ahead of the worker's journal
    restart_delay_s: float = 0.3  # wall time a killed worker stays dead before its restart
    settle_s: float = 0.3  # the worker listens to its pool this long before claiming
    wait_s: float = 60.0  # the longest wait for the worker or the broker before giving up


@dataclass
class Traffic:
    """One recording of a scenario's central traffic, with the truth to score against."""

    messages: list[Recorded]
    visits: list[TrueVisit]
    spans: list[tuple[float, float]]  # each visit's (entered_s, exited_s)
    store_path: Path
    store_id: str
    seed: int
    start_s: float
    end_s: float


def record(
    scenario_path: str | Path, *, seed: int | None = None, store: str | Path | None = None
) -> Traffic:
    """Run the twin and its shelf adapter once; keep what the edge sends the workers."""
    scenario = load_scenario_as(scenario_path, seed=seed, store=store)
    out, twin = record_central(scenario)
    store_file = twin.store
    truth = twin.truth.visits
    return Traffic(
        messages=out,
        visits=[TrueVisit(v.token, v.exited_s, v.basket) for v in truth],
        spans=[(v.entered_s, v.exited_s) for v in truth],
        store_path=Path(scenario.store),
        store_id=store_file.store_id,
        seed=scenario.seed,
        start_s=twin.start_s,
        end_s=twin.end_s,
    )


# --- the broker ---


class PrivateMosquitto:
    """A Mosquitto of the run's own on a free loopback port, with persistence on.

    ``restart`` stops it with SIGTERM (it writes its sessions, subscriptions and
    queued messages to ``folder``) and starts it again on the same port. A dead
    worker's kept session may queue up to ``max_queued_messages`` (the store's
    QoS 1 traffic while it is down).
    """

    def __init__(self, folder: Path) -> None:
        exe = shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
        if exe is None:
            raise OSError("eval --faults needs Mosquitto (apt-get install mosquitto)")
        self.exe = exe
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.conf = folder / "mosquitto.conf"
        # `user`: as root, Mosquitto would drop to `mosquitto`, who cannot write here.
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {folder}/\n"
            "max_queued_messages 1000000\n"
            f"set_tcp_nodelay true\nuser {pwd.getpwuid(os.geteuid()).pw_name}\n"
            f"log_dest file {folder}/mosquitto.log\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10.0
        while not listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise OSError(f"Mosquitto did not start on port {self.port}: {err[-400:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()  # SIGTERM: it saves its database first
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.restarts += 1


# --- the worker process ---


class _WorkerProcess:
    """``smartstore worker`` for the one store, restarted with the same id after a kill."""

    def __init__(self, url: str, traffic: Traffic, folder: Path, settings: FaultSettings) -> None:
        self.url, self.traffic, self.folder, self.settings = url, traffic, folder, settings
        self.db = folder / "ledger.sqlite"
        self.proc: subprocess.Popen[bytes] | None = None
        self.incarnation = 0
        self.kills = 0

    def stats_path(self, incarnation: int) -> Path:
        return self.folder / f"worker-{incarnation}.json"

    def start(self) -> None:
        self.incarnation += 1
        cmd = [
            *(sys.executable, "-m", "smartstore", "-v", "worker", "--broker", self.url),
            *("--pool", "faults", "--id", "w1", "--settle", str(self.settings.settle_s)),
            *("--db", str(self.db), "--session-expiry", str(_SESSION_EXPIRY_S)),
            *("--stats-out", str(self.stats_path(self.incarnation))),
            *("--stores", str(self.traffic.store_path)),
        ]
        log_file = (self.folder / f"worker-{self.incarnation}.log").open("wb")
        self.proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO)
        log_file.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def holds_store(self) -> bool:
        """This incarnation has taken the store (its stats file says so)."""
        stores = _read_json(self.stats_path(self.incarnation)).get("stores_now")
        return isinstance(stores, list) and self.traffic.store_id in stores

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.kills += 1

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def check(self) -> None:
        """Raise with the log's tail if the worker died on its own."""
        if self.proc is not None and self.proc.poll() not in (None, 0, -signal.SIGKILL):
            raise RuntimeError(f"the worker exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self) -> str:
        path = self.folder / f"worker-{self.incarnation}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def counted(self, key: str) -> list[int]:
        """One of each incarnation's counters (``replayed``, ``resent``), in start order."""
        counts = [_read_json(self.stats_path(i)).get(key) for i in range(1, self.incarnation + 1)]
        return [n if isinstance(n, int) else 0 for n in counts]


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- one run ---


@dataclass
class _Outcome:
    record: RunRecord
    injected: dict[str, object] = field(default_factory=dict)
    receipts_on_bus: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0


class _Run:
    """One replay of the traffic into a worker, with or without faults."""

    def __init__(
        self,
        traffic: Traffic,
        folder: Path,
        settings: FaultSettings,
        faults: frozenset[str],
        progress: Callable[[str], None],
    ) -> None:
        self.traffic, self.folder, self.settings, self.faults = traffic, folder, settings, faults
        self.say = progress
        self.broker = PrivateMosquitto(folder / "broker")
        self.worker = _WorkerProcess(self.broker.url, traffic, folder, settings)
        self.ledger: Ledger | None = None
        self.progress_s = traffic.start_s
        self.sent_upto_s = traffic.start_s  # the newest event time published so far
        self.restart_at: float | None = None  # wall time a killed worker comes back
        self.kill_lags_s: list[float] = []  # event time sent but not yet journaled, at each kill

    def run(self) -> _Outcome:
        started = time.perf_counter()
        self.broker.start()
        self.ledger = Ledger(self.worker.db)  # made before the worker opens it
        observer = MqttTransport(
            self.broker.url,
            "faults-observer",
            protocol=5,
            session_expiry_s=_SESSION_EXPIRY_S,
            connect_timeout_s=10,
        )
        outcome = _Outcome(RunRecord())
        claims: list[str] = []
        try:
            self._observe(observer, outcome, claims)
            self.worker.start()
            self._wait(lambda: "online" in claims, "the worker to claim the store")
            sender = MqttTransport(self.broker.url, "faults-devices", connect_timeout_s=10)
            try:
                injected = self._send(sender)
            finally:
                sender.close()
            self._wait(self.worker.alive, "the worker to be running at the end")
            self.worker.stop()
            self.worker.check()
            time.sleep(0.2)  # the last receipts' publications reach the observer
            outcome.record = self._read_ledger()
            injected.update(
                worker_kills=self.worker.kills,
                broker_restarts=self.broker.restarts,
                replayed_per_start=self.worker.counted("replayed"),
                resent_per_start=self.worker.counted("resent"),
            )
            outcome.injected = injected
        finally:
            observer.close()
            self.worker.stop()
            self.broker.stop()
            if self.ledger is not None:
                self.ledger.close()
        outcome.wall_s = time.perf_counter() - started
        return outcome

    def _observe(self, observer: MqttTransport, outcome: _Outcome, claims: list[str]) -> None:
        sid = self.traffic.store_id

        def on_claim(topic: str, data: bytes) -> None:
            try:
                claims.append(DeviceStatus.model_validate_json(data).state)
            except ValueError:
                return

        def on_receipt(topic: str, data: bytes) -> None:
            try:
                outcome.receipts_on_bus[Receipt.model_validate_json(data).session_id] += 1
            except ValueError:
                return

        observer.subscribe(claim_topic(sid, "w1"), on_claim, 1)
        observer.subscribe(TOPICS["receipts"].filter(sid), on_receipt, 1)

    # --- sending, paced, with the faults ---

    def _send(self, sender: MqttTransport) -> dict[str, object]:
        s, traffic = self.settings, self.traffic
        seed = traffic.seed
        moments = choose_moments(
            traffic.spans,
            (s.kills if "worker-kill" in self.faults else 0) + ("broker-restart" in self.faults),
            seed=seed,
            edge_s=s.lag_s + 5.0,  # the worker, up to lag_s behind, is inside the visit too
        )
        restart_broker_at = None
        if "broker-restart" in self.faults and moments:
            restart_broker_at = moments.pop(len(moments) // 2)
        broker_moment = restart_broker_at
        kills = moments

        def publish(m: Outgoing) -> None:
            sender.publish(m.topic, m.data, m.qos, False)
            self.sent_upto_s = max(self.sent_upto_s, m.event_time_s)

        injector = FaultInjector(
            publish,
            duplicate_rate=s.duplicate_rate if "duplicates" in self.faults else 0.0,
            reorder_rate=s.reorder_rate if "reorder" in self.faults else 0.0,
            seed=seed,
        )
        kill_times = list(kills)
        next_say = time.monotonic() + 5.0
        for m in traffic.messages:
            t = m.send_s
            if kills and t >= kills[0]:
                self._kill(kills.pop(0))
            if restart_broker_at is not None and t >= restart_broker_at:
                restart_broker_at = None
                self._restart_broker(sender)
            self._pace(t)
            injector.push(Outgoing(m.topic(traffic.store_id), m.data, m.qos, m.event_time_s))
            if time.monotonic() >= next_say:
                next_say += 5.0
                done = (t - traffic.start_s) / max(traffic.end_s - traffic.start_s, 1e-9)
                self.say(f"  {self.folder.name}: {done:6.1%} sent, worker at {self._lag(t)}")
        injector.flush()
        last = max(m.event_time_s for m in traffic.messages)
        self._wait(
            lambda: self._received(last) and self.worker.holds_store(),
            "the worker to receive the last messages",
        )
        return {
            "messages": len(traffic.messages),
            "messages_sent": injector.sent,
            "duplicates_sent": injector.duplicates,
            "reordered": injector.reordered,
            "kill_times_s": [round(k - traffic.start_s, 1) for k in kill_times],
            "kill_journal_lag_s": self.kill_lags_s,
            "broker_restart_s": (
                None if broker_moment is None else round(broker_moment - traffic.start_s, 1)
            ),
        }

    def _lag(self, t: float) -> str:
        return f"{self.progress_s - t:+.1f} s"

    def _progress(self) -> float:
        assert self.ledger is not None
        latest = self.ledger.journal_latest_s()
        # Before the journal has anything, the devices may run lag_s past the start.
        self.progress_s = max(latest or -1.0, self.traffic.start_s)
        return self.progress_s

    def _received(self, t: float) -> bool:
        self._tend()
        return self.worker.alive() and self._progress() >= t

    def _pace(self, t: float) -> None:
        """Hold the devices back while the worker's journal is ``lag_s`` behind ``t``."""
        self._tend()
        if t - self.progress_s <= self.settings.lag_s:
            return
        self._wait(lambda: self._tended() and t - self._progress() <= self.settings.lag_s, "pace")

    def _tend(self) -> None:
        """Bring a killed worker back once its time is up (called from every wait)."""
        if self.restart_at is not None and time.monotonic() >= self.restart_at:
            self.restart_at = None
            self.worker.start()
        self.worker.check()

    def _tended(self) -> bool:
        self._tend()
        return True

    def _kill(self, at_s: float) -> None:
        """Kill -9 the worker as the devices reach ``at_s``, whatever it is doing.

        It may be up to ``lag_s`` behind: messages in flight to it, received but not
        yet journaled, journaled but not yet handled, shelf events waiting for their
        attribution delay. Only a worker that holds the store is killed (a kill while
        one is still starting up would test less).
        """
        self._wait(
            lambda: self._tended() and self.worker.alive() and self.worker.holds_store(),
            "the worker to hold the store",
        )
        self.kill_lags_s.append(round(self.sent_upto_s - self._progress(), 2))
        self.worker.kill()
        self.restart_at = time.monotonic() + self.settings.restart_delay_s
        self.say(f"  {self.folder.name}: worker killed at +{at_s - self.traffic.start_s:.1f} s")

    def _restart_broker(self, sender: MqttTransport) -> None:
        """Stop the broker mid-stream and start it again; the devices wait for it meanwhile."""
        self.broker.stop()
        self._wait(lambda: not sender.connected, "the devices to see the broker gone")
        self.broker.start()
        self.broker.restarts += 1
        self._wait(lambda: sender.connected, "the devices to reconnect after the broker restart")
        self.say(f"  {self.folder.name}: broker restarted")

    def _wait(self, ready: Callable[[], object], what: str) -> None:
        deadline = time.monotonic() + self.settings.wait_s
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"eval --faults: gave up after {self.settings.wait_s:g} s waiting for {what} "
                    f"(worker log {self.folder}/worker-{self.worker.incarnation}.log):\n"
                    f"{self.worker.tail()}"
                )
            time.sleep(_POLL_S)

    def _read_ledger(self) -> RunRecord:
        assert self.ledger is not None
        lines = [
            line for s in self.ledger.sessions() for line in self.ledger.cart_events(s.session_id)
        ]
        return RunRecord.of(lines, self.ledger.receipts())


# --- the whole evaluation ---


def run_fault_eval(
    scenario_path: str | Path,
    faults: frozenset[str],
    *,
    seed: int | None = None,
    store: str | Path | None = None,
    settings: FaultSettings | None = None,
    keep_dir: str | Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, object]:
    """Record the scenario, run it clean and under ``faults``, compare; returns the report."""
    settings = settings or FaultSettings()
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    traffic = record(scenario_path, seed=seed, store=store)
    recorded_s = time.perf_counter() - started
    progress(f"recorded {len(traffic.messages)} messages in {recorded_s:.1f} s")
    with tempfile.TemporaryDirectory(prefix="smartstore-faults-") as scratch:
        root = Path(keep_dir) if keep_dir is not None else Path(scratch)
        runs: dict[str, _Outcome] = {}
        for name, kinds in (("clean", frozenset[str]()), ("faulty", faults)):
            folder = root / name
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            progress(f"{name} run" + (f": {', '.join(sorted(kinds))}" if kinds else ""))
            runs[name] = _Run(traffic, folder, settings, kinds, progress).run()
    clean, faulty = runs["clean"], runs["faulty"]
    report: dict[str, object] = dict(compare_runs(clean.record, faulty.record))
    metrics = score(traffic.visits, faulty.record.receipts.values())
    report.update(metrics)
    report.update(
        scenario=str(scenario_path),
        seed=traffic.seed,
        faults=sorted(faults),
        injected=faulty.injected,
        receipts_on_bus={
            name: {
                "visits_with_receipt_in_ledger": len(run.record.receipts),
                "published_once": sum(
                    1 for s in run.record.receipts if run.receipts_on_bus[s] == 1
                ),
                "published_more_than_once": sum(1 for n in run.receipts_on_bus.values() if n > 1),
                "not_published": sum(1 for s in run.record.receipts if not run.receipts_on_bus[s]),
            }
            for name, run in runs.items()
        },
        clean={
            **score(traffic.visits, clean.record.receipts.values()),
            **summarize_receipts(clean.record.receipts),
        },
        faulty_receipts=summarize_receipts(faulty.record.receipts),
        visits=len(traffic.visits),
        simulated_s=round(traffic.end_s - traffic.start_s, 1),
        messages=len(traffic.messages),
        wall_record_s=round(recorded_s, 2),
        wall_clean_s=round(clean.wall_s, 2),
        wall_faulty_s=round(faulty.wall_s, 2),
        wall_s=round(time.perf_counter() - started, 2),
        load_average_1m={"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        positioning="simulated",
        interactions="none",
    )
    return report
