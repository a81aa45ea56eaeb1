"""Training recipe for the ceiling re-id model (``vision.reid``): crops in, unit vectors out.

Data: ``python -m smartstore.reid_data`` files (crops of shoppers standing alone,
labelled with who they are). A small CNN (four 3x3 conv blocks, global
average pooling, a linear layer to ``--dim``) is trained as a cosine-softmax
classifier over the shoppers of the training files; the classifier is thrown
away and the normalised features are the look. Augmentation follows what a
ceiling camera changes between two sightings of one person: rotation (any
heading, seen from above), flips, position in the box, brightness.

Runs in the training venv (torch; see ``models/train.py``)::

    .venv-train/bin/python -m models.train_reid runs/reid/busy-202.npz runs/reid/busy-505.npz \\
        --out runs/reid/ceiling_reid.onnx

then measure with ``.venv/bin/python -m smartstore.reid_eval`` and ship with a manifest.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CROP_PX = 24  # mirrors vision.reid.CROP_PX (this module must not import the runtime)


def load(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Crops (N, 3, S, S) float32 in [0, 1] and labels 0..K-1 over all files."""
    crops, labels, offset = [], [], 0
    for path in paths:
        data = np.load(path)
        person = data["person"]
        ids = {p: i for i, p in enumerate(sorted(set(person.tolist())))}
        crops.append(data["crops"])
        labels.append(np.array([ids[p] + offset for p in person.tolist()], np.int64))
        offset += len(ids)
    x = np.concatenate(crops).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    return x, np.concatenate(labels)


def build(dim: int) -> Any:
    from torch import nn

    def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(3, 32, 1),
        *block(32, 48, 2),
        *block(48, 64, 2),
        *block(64, 96, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(96, dim),
    )


def augment(x: Any, generator: Any) -> Any:
    import torch

    k = int(torch.randint(0, 4, (1,), generator=generator))
    x = torch.rot90(x, k, dims=(2, 3))
    if torch.rand(1, generator=generator) < 0.5:
        x = torch.flip(x, dims=(3,))
    shift = torch.randint(-2, 3, (2,), generator=generator).tolist()
    x = torch.roll(x, shifts=shift, dims=(2, 3))
    gain = 1.0 + 0.2 * (torch.rand(x.shape[0], 1, 1, 1, generator=generator) - 0.5)
    return (x * gain).clamp(0, 1)


def train(paths: list[Path], out: Path, *, dim: int, epochs: int, seed: int) -> None:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x_np, y_np = load(paths)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    classes = int(y.max()) + 1
    net = build(dim)
    weights = torch.nn.Parameter(torch.randn(classes, dim) * 0.01)
    opt = torch.optim.AdamW([*net.parameters(), weights], lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, total_steps=epochs * ((len(y) + 127) // 128)
    )
    scale, margin = 16.0, 0.2
    size = sum(p.numel() for p in net.parameters())
    print(f"{len(y)} crops of {classes} shoppers; {size} weights")
    for epoch in range(epochs):
        started, total, right = time.perf_counter(), 0.0, 0
        net.train()
        for batch in torch.randperm(len(y), generator=generator).split(128):
            xb, yb = augment(x[batch], generator), y[batch]
            feats = F.normalize(net(xb), dim=1)
            cosine = feats @ F.normalize(weights, dim=1).T
            # additive margin: the right class must win by `margin` in cosine
            logits = scale * (cosine - margin * F.one_hot(yb, classes))
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(yb)
            right += int((cosine.argmax(1) == yb).sum())
        print(
            f"epoch {epoch + 1}/{epochs} loss {total / len(y):.3f} "
            f"train acc {right / len(y):.3f} ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    net.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        net,
        (torch.zeros(1, 3, CROP_PX, CROP_PX),),
        str(out),
        input_names=["crops"],
        output_names=["embedding"],
        dynamic_axes={"crops": {0: "n"}, "embedding": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.train_reid", description=__doc__)
    p.add_argument("data", nargs="+", type=Path, help="smartstore.reid_data .npz files")
    p.add_argument("--out", type=Path, required=True, help="the ONNX file to write")
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    train(args.data, args.out, dim=args.dim, epochs=args.epochs, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
