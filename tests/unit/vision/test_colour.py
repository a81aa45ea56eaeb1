"""Colour normalisation: a lighting cast is removed, exposure is set, nothing breaks."""

from __future__ import annotations

import numpy as np
import pytest

from vision.colour import TARGET_MEAN, grey_world, normalise_colour


def _scene(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(40, 200, size=(48, 64, 3), dtype=np.uint8)


@pytest.mark.parametrize("cast", [(0.82, 0.97, 1.12), (1.12, 1.02, 0.9), (0.6, 0.6, 0.6)])
def test_a_cast_and_a_dimmer_light_are_undone(cast: tuple[float, float, float]) -> None:
    scene = _scene(1)
    lit = np.clip(scene * np.asarray(cast), 0, 255).astype(np.uint8)
    a, b = grey_world(scene).astype(float), grey_world(lit).astype(float)
    # the same scene under two lights comes out nearly the same
    assert np.abs(a - b).mean() < 3.0
    assert abs(b.mean() - TARGET_MEAN) < 2.0
    means = b.reshape(-1, 3).mean(axis=0)
    assert means.max() - means.min() < 2.0  # channels balanced


def test_black_frames_and_none_mode_are_left_alone() -> None:
    black = np.zeros((8, 8, 3), np.uint8)
    assert grey_world(black) is black
    scene = _scene(2)
    assert normalise_colour(scene, "none") is scene


@pytest.mark.parametrize(
    ("frame", "mode", "match"),
    [
        (np.zeros((8, 8), np.uint8), "grey_world", "shape"),
        (np.zeros((8, 8, 3), np.uint8), "retinex", "unknown colour"),
    ],
)
def test_bad_input_is_refused_clearly(frame: np.ndarray, mode: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        normalise_colour(frame, mode)
