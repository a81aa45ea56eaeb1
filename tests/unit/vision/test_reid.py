"""The shipped re-id model: crops in, unit looks out; same clothes close, other clothes far."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.registry import load_model
from vision.appearance import look_distance
from vision.colour import grey_world
from vision.reid import CROP_PX, ReidEmbedder, balanced_crops, cut_crops

MODELS = Path(__file__).resolve().parents[3] / "models"


def person(top_bgr: tuple[int, int, int], hair_bgr: tuple[int, int, int] = (30, 30, 30)):
    """A crude top-down shopper: floor, a top (the shoulders), a head of hair in the middle."""
    img = np.full((40, 40, 3), 110, np.uint8)
    yy, xx = np.mgrid[0:40, 0:40]
    r = np.hypot(yy - 19.5, xx - 19.5)
    img[r < 15] = top_bgr
    img[r < 6] = hair_bgr
    return img


def test_crops_are_the_runtime_size_and_a_box_off_the_frame_gives_black() -> None:
    frame = np.full((100, 120, 3), 200, np.uint8)
    crops = cut_crops(frame, [[10, 10, 50, 70], [130, 10, 160, 40]])
    assert [c.shape for c in crops] == [(CROP_PX, CROP_PX, 3)] * 2
    assert crops[0].min() == 200 and crops[1].max() == 0


@pytest.fixture(scope="module")
def embedder() -> ReidEmbedder:
    return ReidEmbedder.from_manifest(MODELS / "manifests" / "ceiling_reid.yaml", MODELS)


def test_looks_are_unit_vectors_one_per_crop(embedder: ReidEmbedder) -> None:
    crops = cut_crops(person((40, 40, 200)), [[0, 0, 40, 40]] * 3)
    looks = embedder.embed(crops)
    assert looks.shape[0] == 3
    assert np.allclose(np.linalg.norm(looks, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape[0] == 0


def test_one_shopper_turned_is_nearer_than_another_in_other_clothes(
    embedder: ReidEmbedder,
) -> None:
    red, blue = person((40, 40, 200)), person((200, 60, 30))
    box = [[0, 0, 40, 40]]
    a, turned, other = embedder.embed(
        cut_crops(red, box) + cut_crops(np.rot90(red).copy(), box) + cut_crops(blue, box)
    )
    assert look_distance(a, turned) < look_distance(a, other)


def test_a_detector_manifest_is_refused_as_a_reid_model() -> None:
    detector = load_model(MODELS / "manifests" / "ceiling_person.yaml", model_dir=MODELS)
    with pytest.raises(ValueError, match="task: reid"):
        ReidEmbedder.from_model(detector)


def test_balancing_only_the_boxes_gives_the_crops_of_the_balanced_frame() -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    frame[..., 2] = frame[..., 2] // 3  # a colour cast for grey world to undo
    boxes = [[5, 5, 40, 60], [100, 30, 158, 118], [150, 100, 170, 130]]
    expected = cut_crops(grey_world(frame), boxes)
    got = balanced_crops(frame, boxes)
    assert len(got) == 3
    assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))
