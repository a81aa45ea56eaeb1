"""The model registry: each model is an ONNX file plus a manifest that vouches for it.

A manifest (YAML) names the file, its sha256, the task, input size, decoder,
classes, where the model came from, its licence, what data trained it and
what it scored on which data. :func:`load_model` refuses a file whose hash
differs from the manifest's, so a store never runs a model nobody measured.

Model files are not kept in this repository: the manifest names a file, and
the caller says which folder holds it (``model_dir``), defaulting to the
manifest's own folder.

>>> m = ModelManifest(
...     name="demo", task="person", file="demo.onnx", sha256="0" * 64, input_size=320,
...     decoder="ultralytics", classes=["person"], source="trained here",
...     licence="AGPL-3.0-or-later", training_data="twin seed 1",
... )
>>> m.task, m.classes
('person', ['person'])
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "DecoderName",
    "LoadedModel",
    "Metric",
    "ModelHashMismatch",
    "ModelManifest",
    "ModelManifestError",
    "load_model",
    "model_dir_of",
    "read_manifest",
    "sha256_of",
]

log = logging.getLogger(__name__)

DecoderName = Literal["yolox", "ultralytics", "embedding"]
Task = Literal["person", "shelf", "product", "reid"]
ColourMode = Literal["none", "grey_world"]  # mirrors vision.colour.ColourMode


class ModelManifestError(ValueError):
    """A manifest that cannot be read or does not validate, or a file it names is missing."""


class ModelHashMismatch(ModelManifestError):
    """The model file's sha256 differs from the one its manifest vouches for."""


class Metric(BaseModel):
    """One measured figure and the data it was measured on."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="what was measured, e.g. 'mAP50' or 'recall@iou0.5'")
    value: float = Field(description="the measured value (a fraction in [0, 1] for rates)")
    data: str = Field(description="the data set or split it was measured on, with frame range")
    notes: str = Field(default="", description="conditions: input size, thresholds, machine")


class ModelManifest(BaseModel):
    """What a model is, where it came from and how well it does."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="short unique model name, e.g. 'yolox_nano'")
    task: Task = Field(
        description="person (ceiling cameras), shelf (hands), product (SKUs) or reid "
        "(person crops to looks, vision/reid.py)"
    )
    file: str = Field(description="the ONNX file name, looked up in the model folder")
    sha256: str = Field(description="lower-case hex sha256 of the ONNX file")
    input_size: int = Field(gt=0, description="square model input side in pixels")
    decoder: DecoderName = Field(
        description="output format: 'yolox' or 'ultralytics' (detectors), 'embedding' (re-id)"
    )
    colour: ColourMode = Field(
        default="none",
        description="colour normalisation applied to each frame before the model "
        "(vision/colour.py); must be what the training images got",
    )
    classes: list[str] | str = Field(
        description="class names in output order, or a text file (one name a line) "
        "in the model folder"
    )
    source: str = Field(description="where the model came from (repository @ commit, recipe)")
    licence: str = Field(description="SPDX licence of the weights")
    training_data: str = Field(description="what data trained it")
    metrics: list[Metric] = Field(default_factory=list, description="measured figures")

    @field_validator("sha256")
    @classmethod
    def _hex64(cls, value: str) -> str:
        text = value.strip().lower()
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise ValueError(f"sha256 must be 64 hex digits, got {value!r}")
        return text

    @field_validator("file")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if Path(value).name != value:
            raise ValueError(f"file must be a bare file name (no folders), got {value!r}")
        return value


@dataclass(frozen=True)
class LoadedModel:
    """A manifest whose file was found and verified, with its class names resolved."""

    manifest: ModelManifest
    path: Path
    classes: tuple[str, ...]


def sha256_of(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large models need little memory."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(manifest_path: str | Path) -> ModelManifest:
    """Parse and validate a manifest; errors name the file and each bad field."""
    path = Path(manifest_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelManifestError(
            f"{path}: cannot read model manifest ({exc.strerror}); check the path"
        ) from None
    # ValueError: not UTF-8, or a value PyYAML cannot construct (a date that does not exist).
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise ModelManifestError(f"{path}: not valid YAML: {str(exc)[:300]}") from None
    try:
        return ModelManifest.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(
            f"  - {'.'.join(str(p) for p in err['loc']) or '<top level>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ModelManifestError(
            f"{path}: invalid model manifest; fix these fields:\n{problems}"
        ) from None


def _classes(manifest: ModelManifest, folder: Path) -> tuple[str, ...]:
    if isinstance(manifest.classes, list):
        names = manifest.classes
    else:
        names_path = folder / manifest.classes
        if not names_path.is_file():
            raise ModelManifestError(
                f"class names file {names_path} (named by manifest {manifest.name!r}) not "
                "found; put it beside the model file or list the classes in the manifest"
            )
        lines = names_path.read_text(encoding="utf-8").splitlines()
        names = [line.strip() for line in lines if line.strip()]
    if not names:
        raise ModelManifestError(f"manifest {manifest.name!r} lists no classes")
    return tuple(names)


def model_dir_of(manifest: str | Path) -> Path:
    """Where a manifest's ONNX lies: models/ for the shipped manifests/, else beside it."""
    folder = Path(manifest).resolve().parent
    return folder.parent if folder.name == "manifests" else folder


def load_model(manifest_path: str | Path, *, model_dir: str | Path | None = None) -> LoadedModel:
    """Read a manifest, find its ONNX file and verify the file's sha256.

    ``model_dir`` is the folder holding the model file (and a class-names file
    if the manifest names one); by default the manifest's own folder. Raises
    :class:`ModelHashMismatch` when the file is not the one the manifest
    vouches for.
    """
    manifest_file = Path(manifest_path)
    manifest = read_manifest(manifest_file)
    folder = Path(model_dir) if model_dir is not None else manifest_file.parent
    path = folder / manifest.file
    if not path.is_file():
        raise ModelManifestError(
            f"model file {path} (named by {manifest_file}) not found; pass model_dir= the "
            "folder that holds it, or fetch it from the manifest's source: "
            f"{manifest.source}"
        )
    actual = sha256_of(path)
    if actual != manifest.sha256:
        raise ModelHashMismatch(
            f"model file {path} has sha256 {actual}, but {manifest_file} expects "
            f"{manifest.sha256}; the file is corrupt or a different model. Refusing to "
            "load it: fetch the file named in the manifest's source, or, for a new model, "
            "measure it and write a new manifest with its hash"
        )
    classes = _classes(manifest, folder)
    log.info("model %s verified (%s, %d classes)", manifest.name, path, len(classes))
    return LoadedModel(manifest=manifest, path=path, classes=classes)
