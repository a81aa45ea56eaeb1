"""The fuzz targets of tools/fuzz hold on their seeds and on bounded random input.

atheris explores them for as long as it is given (``python tools/fuzz/run.py
TARGET --seconds N``); this keeps every target honest in each ``pytest`` run
without atheris: the seeds (good input) pass, arbitrary bytes and seeds with
bytes spliced in break no contract, and the runner's fallback engine and
replay mode work.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tools.fuzz import run
from tools.fuzz.targets import TARGETS, Target

# Inputs per target: the store and scenario targets parse YAML (about 0.1 s a file).
EXAMPLES = {"bus": 300, "rfid": 300, "epc": 300, "store": 15, "scenario": 40}
SEEDS = {name: target.seeds() for name, target in TARGETS.items()}


def bounded(n: int) -> Any:
    return settings(
        max_examples=max(n, int(os.environ.get("SMARTSTORE_FUZZ_EXAMPLES", "0"))),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def test_every_target_has_seeds_and_a_budget() -> None:
    assert set(TARGETS) == set(run.NAMES) == set(EXAMPLES)
    assert all(SEEDS.values())


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_seeds_keep_the_contract(name: str) -> None:
    for seed in SEEDS[name]:
        TARGETS[name].check(seed)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_random_and_spliced_input_keeps_the_contract(name: str) -> None:
    @bounded(EXAMPLES[name])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        if data.draw(st.booleans(), label="spliced"):
            seed = data.draw(st.sampled_from(SEEDS[name]), label="seed")
            at = data.draw(st.integers(0, len(seed)), label="at")
            cut = data.draw(st.integers(0, 64), label="cut")
            junk = data.draw(st.binary(max_size=32), label="junk")
            body = seed[:at] + junk + seed[at + cut :]
        else:
            body = data.draw(st.binary(max_size=400), label="bytes")
        TARGETS[name].check(body)

    check()


def test_random_engine_runs_bounded_and_finds_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["epc", "--engine", "random", "--runs", "2000", "--seconds", "30"]) == 0
    assert "epc: 2000 inputs" in capsys.readouterr().out


def test_replay_reruns_saved_inputs(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_bytes(SEEDS["rfid"][0])
    assert run.main(["rfid", "--replay", str(good)]) == 0


def test_replay_reports_an_input_that_breaks_a_contract(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(data: bytes) -> None:
        raise KeyError("a decoder bug")

    epc = TARGETS["epc"]
    monkeypatch.setitem(TARGETS, "epc", Target(epc.name, epc.what, broken, epc.seeds))
    bad = tmp_path / "bad"
    bad.write_bytes(b"30")
    assert run.main(["epc", "--replay", str(bad)]) == 1
