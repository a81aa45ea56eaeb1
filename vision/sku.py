"""Which product is in the hand: a gallery classifier over package appearance.

A store knows its products before it sells them: each SKU gets reference
images (photos taken at onboarding; in the twin, ``sim.render_shelf.package_image``).
A crop of the product in a hand is compared with every reference by an
appearance descriptor, and the similarities become a probability per SKU.
New SKUs need a photo, not a retrained detector: the detector only has to
find "a product in a hand" (class ``product``), which generalises.

The descriptor is deliberately simple and cheap (well under 1 ms a crop):

* a hue/saturation histogram of the crop's coloured pixels (what colours,
  in what proportions: robust to the crop's size and the package's pose);
* a 3 x 3 grid of mean Lab colours (where the colours are: tells apart two
  packages with the same palette in another layout);

Crops must come from frames already colour-normalised as a whole
(``vision.colour``, the camera's white balance): balancing a single crop would
turn any one-colour package grey. Similarities are turned into probabilities with
a softmax whose temperature says how sharply a better match wins.

>>> gallery = {"RED": np.full((40, 30, 3), (30, 30, 200), np.uint8),
...            "BLUE": np.full((40, 30, 3), (200, 40, 30), np.uint8)}
>>> clf = SkuClassifier.from_images(gallery)
>>> clf.classify(np.full((20, 16, 3), (40, 40, 190), np.uint8)).sku
'RED'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["SkuClassifier", "SkuGuess", "describe"]

HUE_BINS = 18
SAT_BINS = 3
GRID = 3
MIN_CROP_PX = 4
_GREY_SAT = 40  # below this saturation a pixel says little about hue


@dataclass(frozen=True)
class SkuGuess:
    """The best SKU, its probability, and the full distribution over the gallery."""

    sku: str
    confidence: float
    probabilities: dict[str, float]


def describe(crop: np.ndarray) -> np.ndarray:
    """Appearance descriptor of a BGR crop: unit-length float32 vector."""
    if crop.ndim != 3 or crop.shape[2] != 3 or min(crop.shape[:2]) < MIN_CROP_PX:
        raise ValueError(f"a product crop must be (H, W, 3) and at least {MIN_CROP_PX} px a side")
    balanced = crop
    hsv = cv2.cvtColor(balanced, cv2.COLOR_BGR2HSV)
    coloured = hsv[..., 1] >= _GREY_SAT
    hist = np.zeros((HUE_BINS, SAT_BINS), np.float32)
    if coloured.any():
        h = (hsv[..., 0][coloured].astype(np.int32) * HUE_BINS) // 180
        s = ((hsv[..., 1][coloured].astype(np.int32) - _GREY_SAT) * SAT_BINS) // (256 - _GREY_SAT)
        np.add.at(hist, (np.clip(h, 0, HUE_BINS - 1), np.clip(s, 0, SAT_BINS - 1)), 1.0)
    grey_share = 1.0 - coloured.mean()
    hist_vec = np.append(hist.ravel() / max(coloured.size, 1), grey_share)
    lab = cv2.cvtColor(
        cv2.resize(balanced, (GRID, GRID), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2LAB
    )
    grid_vec = lab.astype(np.float32).ravel() / 255.0
    vec = np.concatenate([hist_vec.astype(np.float32) * 2.0, grid_vec * 0.5])
    return (vec / max(float(np.linalg.norm(vec)), 1e-9)).astype(np.float32)


class SkuClassifier:
    """Nearest references by cosine similarity, softmax over SKUs."""

    def __init__(self, references: Mapping[str, Iterable[np.ndarray]], temperature: float = 0.03):
        if not references:
            raise ValueError("the SKU gallery is empty; give at least one reference image per SKU")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.skus = sorted(references)
        self.temperature = temperature
        self._vectors: list[np.ndarray] = []
        for sku in self.skus:
            vecs = [np.asarray(v, np.float32) for v in references[sku]]
            if not vecs:
                raise ValueError(f"SKU {sku!r} has no reference descriptor")
            self._vectors.append(np.stack(vecs))

    @classmethod
    def from_images(
        cls, images: Mapping[str, np.ndarray | Iterable[np.ndarray]], temperature: float = 0.03
    ) -> SkuClassifier:
        """A classifier from reference images (one image or several per SKU)."""
        refs: dict[str, list[np.ndarray]] = {}
        for sku, imgs in images.items():
            seq = [imgs] if isinstance(imgs, np.ndarray) else list(imgs)
            refs[sku] = [describe(img) for img in seq]
        return cls(refs, temperature)

    def classify(self, crop: np.ndarray, candidates: Iterable[str] | None = None) -> SkuGuess:
        """Probabilities over the gallery (or over ``candidates`` only, when given)."""
        vec = describe(crop)
        names = self.skus if candidates is None else [s for s in self.skus if s in set(candidates)]
        if not names:
            raise ValueError("none of the candidate SKUs is in the gallery")
        index = {s: i for i, s in enumerate(self.skus)}
        sims = np.array([float(np.max(self._vectors[index[s]] @ vec)) for s in names])
        z = (sims - sims.max()) / self.temperature
        p = np.exp(z)
        p /= p.sum()
        best = int(np.argmax(p))
        return SkuGuess(
            names[best], float(p[best]), dict(zip(names, p.round(6).tolist(), strict=True))
        )
