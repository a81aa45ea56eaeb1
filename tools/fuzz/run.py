"""Run a fuzz target for a bounded time: coverage-guided with atheris, or a plain mutator.

    python tools/fuzz/run.py TARGET --seconds N     # TARGET: bus, rfid, epc, store, scenario
    python tools/fuzz/run.py all --seconds 60       # the time is shared between the targets
    python tools/fuzz/run.py store --replay crash-1234abcd    # rerun saved inputs

The targets and their contracts are in ``tools/fuzz/targets.py``. With atheris
installed (``.venv/bin/pip install atheris``) the decoders are instrumented
and libFuzzer steers towards new code; ``--engine random`` (the fallback when
atheris is missing) mutates the seeds blindly, seeded and repeatable. Each
run starts from the target's seeds (the shipped store and scenario files,
valid reader messages and EPCs, valid payloads) plus ``--corpus DIR`` if
given (atheris keeps what it finds there, by default ``out/fuzz/corpus/TARGET``,
so each run starts where the last one stopped). A broken contract prints the
traceback, saves the input under ``--out`` (default ``out/fuzz``) and exits 1.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
NAMES = ("bus", "rfid", "epc", "store", "scenario")
# Modules whose code atheris instruments for coverage (our decoders and the parsers under them).
INSTRUMENT = ["iot", "sim.scenario", "tools.fuzz", "yaml", "json"]
TOKENS = [b"NaN", b"Infinity", b"-1e400", b"9" * 400, b"[" * 64, b"{", b'"', b"\\u0000", b"\xff"]
TOKENS += [b"null", b"true", b": ", b", ", b"\n", b"&a ", b"*a", b"!!binary ", b"2026-02-30"]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if args.replay:
        return _replay(args.target, [Path(p) for p in args.replay])
    if args.target == "all":
        return _all(args)
    engine = args.engine or ("atheris" if _has_atheris() else "random")
    if engine == "atheris":
        if not _has_atheris():
            print("atheris is not installed: .venv/bin/pip install atheris", file=sys.stderr)
            return 2
        return _atheris(args)
    return _random(args)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("target", choices=[*NAMES, "all"])
    p.add_argument("--seconds", type=float, default=30.0, help="time budget (all: shared)")
    p.add_argument("--runs", type=int, default=None, help="stop after this many inputs")
    p.add_argument("--engine", choices=["atheris", "random"], default=None)
    p.add_argument("--corpus", type=Path, default=None, help="extra inputs; atheris adds to it")
    p.add_argument("--out", type=Path, default=REPO / "out" / "fuzz", help="failing inputs")
    p.add_argument("--seed", type=int, default=0, help="random engine's seed")
    p.add_argument("--replay", nargs="+", metavar="FILE", help="run saved inputs, then stop")
    return p


def _has_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def _all(args: argparse.Namespace) -> int:
    """Each target in its own process (libFuzzer exits the process when it is done)."""
    share = args.seconds / len(NAMES)
    worst = 0
    for name in NAMES:
        cmd = [sys.executable, __file__, name, "--seconds", f"{share:g}", "--out", str(args.out)]
        cmd += ["--seed", str(args.seed)]
        if args.engine:
            cmd += ["--engine", args.engine]
        if args.runs is not None:
            cmd += ["--runs", str(args.runs)]
        print(f"== {name}: {share:g} s", flush=True)
        rc = subprocess.run(cmd, check=False).returncode
        worst = max(worst, rc)
        if rc:
            print(f"== {name}: FAILED (exit {rc}); the input is under {args.out}", flush=True)
    return worst


def _seed_corpus(target: Any, extra: Path | None) -> list[bytes]:
    seeds = list(target.seeds())
    if extra is not None and extra.is_dir():
        seeds += [p.read_bytes() for p in sorted(extra.iterdir()) if p.is_file()]
    return seeds


def _atheris(args: argparse.Namespace) -> int:
    import atheris

    with atheris.instrument_imports(include=INSTRUMENT):
        from tools.fuzz.targets import TARGETS
    target = TARGETS[args.target]
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = args.corpus or args.out / "corpus" / args.target  # grows from run to run
    corpus.mkdir(parents=True, exist_ok=True)
    for k, seed in enumerate(target.seeds()):
        (corpus / f"seed-{k}").write_bytes(seed)
    flags = [
        f"-max_total_time={max(1, round(args.seconds))}",
        f"-artifact_prefix={args.out}/{args.target}-",
        "-timeout=20",
        "-rss_limit_mb=3072",
        "-max_len=65536",
        "-print_final_stats=1",
    ]
    if args.runs is not None:
        flags.append(f"-runs={args.runs}")
    atheris.Setup([sys.argv[0], *flags, str(corpus)], target.check)
    atheris.Fuzz()  # exits the process: 0 when the time is up, 1 on a broken contract
    return 0


def _random(args: argparse.Namespace) -> int:
    from tools.fuzz.targets import TARGETS

    target = TARGETS[args.target]
    rng = random.Random(args.seed)
    corpus = _seed_corpus(target, args.corpus)
    deadline = time.monotonic() + args.seconds
    runs = 0
    while time.monotonic() < deadline and (args.runs is None or runs < args.runs):
        data = corpus[runs % len(corpus)] if runs < len(corpus) else _mutate(rng, corpus)
        runs += 1
        try:
            target.check(data)
        except Exception:
            traceback.print_exc()
            return _save_failure(args, data)
    print(f"{args.target}: {runs} inputs in {args.seconds:g} s, no contract broken (random)")
    return 0


def _mutate(rng: random.Random, corpus: list[bytes]) -> bytes:
    data = bytearray(rng.choice(corpus))
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(data))
        move = rng.randrange(6)
        if move == 0 and data:  # flip a bit
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        elif move == 1:  # insert a token that decoders find hard
            data[at:at] = rng.choice(TOKENS)
        elif move == 2:  # delete a run
            del data[at : at + rng.randint(1, 64)]
        elif move == 3:  # duplicate a run
            data[at:at] = data[at : at + rng.randint(1, 256)]
        elif move == 4:  # splice another input in
            other = rng.choice(corpus)
            start = rng.randint(0, len(other))
            data[at:at] = other[start : start + rng.randint(1, 512)]
        else:  # random bytes
            data[at:at] = rng.randbytes(rng.randint(1, 16))
    return bytes(data)


def _save_failure(args: argparse.Namespace, data: bytes) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{args.target}-crash-{abs(hash(data)) & 0xFFFFFFFF:08x}"
    path.write_bytes(data)
    print(f"input saved to {path}; rerun: python tools/fuzz/run.py {args.target} --replay {path}")
    return 1


def _replay(name: str, paths: list[Path]) -> int:
    from tools.fuzz.targets import TARGETS

    names = NAMES if name == "all" else (name,)
    failed = 0
    for path in paths:
        for target in (TARGETS[n] for n in names):
            try:
                target.check(path.read_bytes())
            except Exception:
                failed += 1
                print(f"{target.name}: {path} breaks the contract:", file=sys.stderr)
                traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
