"""Where each SKU stands on a shared plate: the planogram's facing layout on the floor plan.

Convention (the store file's planogram order): a plate's width, less 2 cm at
each end, is split between its SKUs in proportion to their facings, laid out
from the left of a shopper facing the shelf. A south face (``side: south``)
is faced looking north, so its left is the low-x end; a north face's left is
the high-x end. The twin's shelf renderer stocks plates this way and the
shelf-camera service reads a hand's SKU from where on the plate it reached.

>>> from iot.store import load_store
>>> from pathlib import Path
>>> store = load_store(Path(__file__).resolve().parent.parent / "stores" / "demo.yaml")
>>> [(sku, round(x0, 2), round(x1, 2)) for sku, x0, x1 in facing_spans_m(store, "g01-s1-p1")]
[('SKU001', 2.52, 3.48)]
"""

from __future__ import annotations

from iot.store import Store

__all__ = ["EDGE_MARGIN_M", "facing_spans_m"]

EDGE_MARGIN_M = 0.02


def facing_spans_m(store: Store, plate_id: str) -> list[tuple[str, float, float]]:
    """(sku, x_from_m, x_to_m) per planogram entry of the plate, in world x, from x_from < x_to."""
    gondola, shelf, plate = store.plate(plate_id)
    entries = store.skus_on_plate(plate_id)
    total = sum(e.facings for e in entries)
    usable = plate.width_m - 2 * EDGE_MARGIN_M
    spans = []
    s = EDGE_MARGIN_M  # along the face from the shopper's left edge of the plate
    for e in entries:
        width = usable * e.facings / total
        if shelf.side == "south":
            x0 = gondola.x_m + plate.offset_m + s
            spans.append((e.sku, x0, x0 + width))
        else:
            x1 = gondola.x_m + plate.offset_m + plate.width_m - s
            spans.append((e.sku, x1 - width, x1))
        s += width
    return spans
