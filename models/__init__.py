"""The model registry (ONNX files + manifests) and training recipes.

Runtime code loads models through :func:`models.registry.load_model`, which
verifies each file's sha256 against its manifest. Training needs the optional
``[train]`` extra. Manifests of known models live in ``models/manifests/``;
the ONNX files themselves are never committed.
"""

from pathlib import Path

from models.registry import LoadedModel, ModelHashMismatch, ModelManifest, load_model

__all__ = ["MANIFEST_DIR", "LoadedModel", "ModelHashMismatch", "ModelManifest", "load_model"]

MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
