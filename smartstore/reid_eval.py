"""How well a look tells two shoppers apart: the swap test on held-out re-id crops.

The question the floor fusion asks after two shoppers met: does each track
still follow the person it started with? So, per trial, two shoppers A and B
of one ``smartstore.reid_data`` file; each one's *anchor* is the mean look of
their first ``anchor`` crops, their *now* the mean look of ``now`` crops in a
row from later in the visit; the trial is right when keeping the pairing
(A-anchor with A-now, B with B) costs less look distance than swapping it.
Reported over random pairs and over the hard pairs: the eighth of all pairs
whose tops (the colour seen from above) are closest, from the twin's own
appearance draw. A look scores 0.5 by chance. Also ``rank1_single_crop``: the
share of single crops whose nearest mean look, among all the file's
shoppers, is their own (stricter: one crop, sixty candidates).

    .venv/bin/python -m smartstore.reid_eval runs/reid/busy-303-evening.npz --seed 303 \\
        --manifest models/manifests/ceiling_reid.yaml --model-dir models
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from sim.render_body import appearance_for
from vision.appearance import describe_person, look_distance

__all__ = ["swap_test"]

Describe = Callable[[list[np.ndarray]], list[np.ndarray | None]]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def swap_test(
    looks: dict[int, list[np.ndarray]],
    pairs: list[tuple[int, int]],
    *,
    trials: int = 3000,
    anchor: int = 5,
    now: int = 3,
    seed: int = 0,
) -> float:
    """Share of trials where the kept pairing explains the later looks better than the swap."""
    rng = np.random.default_rng(seed)
    right = 0
    for _ in range(trials):
        a, b = pairs[int(rng.integers(len(pairs)))]
        la, lb = looks[a], looks[b]
        ia = int(rng.integers(anchor, len(la) - now + 1))
        ib = int(rng.integers(anchor, len(lb) - now + 1))
        anchor_a, anchor_b = _unit(np.mean(la[:anchor], 0)), _unit(np.mean(lb[:anchor], 0))
        now_a, now_b = _unit(np.mean(la[ia : ia + now], 0)), _unit(np.mean(lb[ib : ib + now], 0))
        keep = look_distance(anchor_a, now_a) + look_distance(anchor_b, now_b)
        swap = look_distance(anchor_a, now_b) + look_distance(anchor_b, now_a)
        right += keep < swap
    return right / trials


def _rank1(looks: dict[int, list[np.ndarray]]) -> float:
    """Share of single crops whose nearest mean look (of all the file's shoppers) is their own."""
    people = sorted(looks)
    means = np.stack([_unit(np.mean(looks[p], 0)) for p in people])
    right = total = 0
    for k, p in enumerate(people):
        nearest = (np.stack(looks[p]) @ means.T).argmax(axis=1)
        right += int((nearest == k).sum())
        total += len(looks[p])
    return right / total


def _hard_pairs(people: list[int], seed: int, share: float = 0.125) -> list[tuple[int, int]]:
    def top_lab(p: int) -> np.ndarray:
        bgr = np.array([[appearance_for(seed, p).top_bgr]], np.uint8)
        return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB)[0, 0])

    lab = {p: top_lab(p) for p in people}
    ranked = sorted(
        (float(np.linalg.norm(lab[a].astype(float) - lab[b].astype(float))), a, b)
        for i, a in enumerate(people)
        for b in people[i + 1 :]
    )
    return [(a, b) for _, a, b in ranked[: max(1, int(len(ranked) * share))]]


def histogram_looks(crops: list[np.ndarray]) -> list[np.ndarray | None]:
    return [describe_person(c, (0, 0, c.shape[1], c.shape[0])) for c in crops]


def evaluate(data: Path, seed: int, describe: Describe, *, min_crops: int = 12) -> dict[str, float]:
    npz = np.load(data)
    order = np.argsort(npz["time_s"], kind="stable")
    crops, person = npz["crops"][order], npz["person"][order]
    looks: dict[int, list[np.ndarray]] = {}
    for p in sorted(set(person.tolist())):
        described = describe(list(crops[person == p]))
        kept = [d for d in described if d is not None]
        if len(kept) >= min_crops:
            looks[p] = kept
    people = sorted(looks)
    all_pairs = [(a, b) for i, a in enumerate(people) for b in people[i + 1 :]]
    return {
        "people": len(people),
        "rank1_single_crop": round(_rank1(looks), 3),
        "swap_test_all": round(swap_test(looks, all_pairs), 3),
        "swap_test_hard": round(swap_test(looks, _hard_pairs(people, seed)), 3),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m smartstore.reid_eval", description=__doc__)
    p.add_argument("data", type=Path, help="a smartstore.reid_data .npz file")
    p.add_argument("--seed", type=int, required=True, help="the scenario seed it was drawn with")
    p.add_argument("--manifest", help="a re-id model manifest (task: reid)")
    p.add_argument("--model-dir", default="models")
    p.add_argument("--onnx", type=Path, help="an unshipped model file (no manifest), to compare")
    args = p.parse_args(argv)
    report = {"histogram": evaluate(args.data, args.seed, histogram_looks)}
    if args.manifest:
        from vision.reid import ReidEmbedder

        embedder = ReidEmbedder.from_manifest(args.manifest, args.model_dir)
        report["model"] = evaluate(args.data, args.seed, lambda c: list(embedder.embed(c)))
    if args.onnx:
        from vision.reid import ReidEmbedder

        bare = ReidEmbedder(args.onnx)
        report[str(args.onnx)] = evaluate(args.data, args.seed, lambda c: list(bare.embed(c)))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
