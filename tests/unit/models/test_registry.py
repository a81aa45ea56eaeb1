"""Model manifests: validation, and refusal of a file whose sha256 differs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from models import MANIFEST_DIR
from models.registry import (
    ModelHashMismatch,
    ModelManifestError,
    load_model,
    read_manifest,
)

PAYLOAD = b"not really onnx, but the registry only hashes it"


def _manifest(tmp_path: Path, **changes: object) -> Path:
    (tmp_path / "tiny.onnx").write_bytes(PAYLOAD)
    data: dict[str, object] = {
        "name": "tiny",
        "task": "person",
        "file": "tiny.onnx",
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
        "input_size": 320,
        "decoder": "ultralytics",
        "classes": ["person"],
        "source": "unit test",
        "licence": "CC0-1.0",
        "training_data": "none",
        "metrics": [{"name": "recall", "value": 0.5, "data": "nothing"}],
    }
    data.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_matching_file_loads(tmp_path: Path) -> None:
    model = load_model(_manifest(tmp_path))
    assert model.path == tmp_path / "tiny.onnx"
    assert model.classes == ("person",)
    assert model.manifest.metrics[0].value == 0.5


def test_a_changed_file_is_refused_with_both_hashes(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    (tmp_path / "tiny.onnx").write_bytes(PAYLOAD + b"!")
    actual = hashlib.sha256(PAYLOAD + b"!").hexdigest()
    expected = hashlib.sha256(PAYLOAD).hexdigest()
    with pytest.raises(ModelHashMismatch) as info:
        load_model(manifest)
    text = str(info.value)
    assert actual in text and expected in text and "tiny.onnx" in text
    assert "Refusing" in text


def test_model_dir_and_class_file(tmp_path: Path) -> None:
    store = tmp_path / "elsewhere"
    store.mkdir()
    manifest = _manifest(tmp_path, classes="names.txt")
    (tmp_path / "tiny.onnx").rename(store / "tiny.onnx")
    with pytest.raises(ModelManifestError, match="pass model_dir="):
        load_model(manifest)
    with pytest.raises(ModelManifestError, match="class names file"):
        load_model(manifest, model_dir=store)
    (store / "names.txt").write_text("person\n\nbicycle\n")
    assert load_model(manifest, model_dir=store).classes == ("person", "bicycle")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sha256": "abc"}, "sha256"),
        ({"task": "cat"}, "task"),
        ({"decoder": "ssd"}, "decoder"),
        ({"file": "../tiny.onnx"}, "file"),
        ({"input_size": 0}, "input_size"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_manifests_name_the_field(tmp_path: Path, changes: dict, field: str) -> None:
    with pytest.raises(ModelManifestError, match=rf"- {field}"):
        read_manifest(_manifest(tmp_path, **changes))


def test_unreadable_manifest(tmp_path: Path) -> None:
    with pytest.raises(ModelManifestError, match="cannot read model manifest"):
        read_manifest(tmp_path / "absent.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(ModelManifestError, match="not valid YAML"):
        read_manifest(tmp_path / "bad.yaml")


def test_shipped_manifests_validate() -> None:
    manifests = sorted(MANIFEST_DIR.glob("*.yaml"))
    assert manifests, f"no manifests in {MANIFEST_DIR}"
    for path in manifests:
        manifest = read_manifest(path)
        assert manifest.metrics, f"{path} reports no measured metrics"
