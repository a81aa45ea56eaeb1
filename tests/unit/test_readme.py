"""The README's commands are the ones that really run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smartstore.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _commands() -> list[str]:
    return re.findall(r"```sh\n(.*?)\n```", README, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = _commands()[1]
    assert "pytest" in test_command
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_readme_demo_command_installs_and_runs_the_demo() -> None:
    demo = _commands()[0]
    assert "pip install -e ." in demo and "smartstore demo" in demo


@pytest.mark.parametrize("argv", [["check-store", "stores/demo.yaml"], ["topics"]])
def test_readme_helper_commands_run(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(argv) == 0
    assert capsys.readouterr().out.strip()


def test_a_bad_store_file_exits_2_with_the_field_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "stores" / "demo.yaml").read_text().replace("length_m: 3.0", "length_m: -3.0", 1)
    )
    assert main(["check-store", str(bad)]) == 2
    assert "gondolas.0.length_m" in capsys.readouterr().err
