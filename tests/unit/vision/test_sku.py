"""The SKU gallery classifier: palettes and layouts tell packages apart."""

from __future__ import annotations

import numpy as np
import pytest

from vision.sku import SkuClassifier, describe


def package(body: tuple[int, int, int], band: tuple[int, int, int], band_top: bool) -> np.ndarray:
    img = np.zeros((60, 40, 3), np.uint8)
    img[:] = body
    rows = slice(0, 20) if band_top else slice(40, 60)
    img[rows] = band
    return img


GALLERY = {
    "RED-TOP": package((40, 40, 200), (230, 230, 230), True),
    "RED-BOTTOM": package((40, 40, 200), (230, 230, 230), False),
    "GREEN": package((40, 180, 40), (20, 20, 20), True),
    "BLUE": package((200, 60, 30), (0, 200, 255), False),
}


def noisy(img: np.ndarray, seed: int, scale: float = 0.85) -> np.ndarray:
    """A smaller, noisier view of a package, as a hand-held crop would be."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    small = cv2.resize(img, (int(w * scale), int(h * scale)))
    return np.clip(small + rng.normal(0, 8, small.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sku", sorted(GALLERY))
def test_each_package_is_recognised_in_a_noisy_crop(sku: str) -> None:
    clf = SkuClassifier.from_images(GALLERY)
    guess = clf.classify(noisy(GALLERY[sku], seed=len(sku)))
    assert guess.sku == sku
    assert guess.confidence > 0.5
    assert sum(guess.probabilities.values()) == pytest.approx(1.0, abs=1e-4)


def test_candidates_restrict_the_answer() -> None:
    clf = SkuClassifier.from_images(GALLERY)
    guess = clf.classify(GALLERY["GREEN"], candidates=["RED-TOP", "BLUE"])
    assert guess.sku in {"RED-TOP", "BLUE"} and set(guess.probabilities) == {"RED-TOP", "BLUE"}


def test_bad_crops_and_galleries_are_refused() -> None:
    with pytest.raises(ValueError, match="at least"):
        describe(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        SkuClassifier({})
    with pytest.raises(ValueError, match="candidate"):
        SkuClassifier.from_images(GALLERY).classify(GALLERY["BLUE"], candidates=["NOPE"])
