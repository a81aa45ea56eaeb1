"""Receipts: a closed visit's cart, priced from the catalog, with confidence and review flags.

Money is integer minor units (cents). Without a price source every unit
pays the catalog price. With one (a :class:`checkout.pricebook.PriceBook`),
the ledger is folded in event-time order and each unit pays the price in
effect when it was picked; a put-back returns the most recently picked units
of its SKU first (last in, first out), and one with nothing left to return
cancels the next units picked, so quantities stay the net count. Units of a
SKU at one price under one promotion make one line, earliest pick first.
A line's confidence is the lowest confidence among the ledger lines of its
SKU (all of them: a put-back decides which units stay); the visit needs
review when any ledger line is below ``review_below``, when an unexplained
event was attributed to it, or when it was never bound to a track (its cart
is then built from no positional evidence at all).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from checkout.ids import derived_id
from checkout.ledger import SessionRecord
from checkout.pricebook import PriceSource, UnitPrice
from iot.payloads import CartEvent, Receipt, ReceiptLine
from iot.store import CatalogItem, Store

__all__ = ["build_receipt", "price_lines", "receipt_id_for", "review_reasons"]


def receipt_id_for(session_id: str) -> str:
    """Exactly one receipt per session: its id is derived from the session id."""
    return derived_id("r-", session_id)


def price_lines(
    store: Store, events: Sequence[CartEvent], prices: PriceSource | None = None
) -> list[ReceiptLine]:
    """Fold ledger lines into priced receipt lines (SKUs netted to zero or below left out).

    ``prices=None`` prices every unit from the catalog; a price source prices
    each unit as of its pick's event time.
    """
    if prices is not None:
        return _lines_at_pick_prices(store, events, prices)
    units: dict[str, int] = {}
    confidence: dict[str, float] = {}
    for e in events:
        units[e.sku] = units.get(e.sku, 0) + e.quantity_delta
        confidence[e.sku] = min(confidence.get(e.sku, 1.0), e.confidence)
    lines = []
    for sku in sorted(units):
        n = units[sku]
        if n <= 0:
            continue
        item = store.items.get(sku)
        if item is None:
            raise KeyError(
                f"SKU {sku!r} in the ledger is not in the catalog of store "
                f"{store.store_id!r}; restore the catalog entry"
            )
        lines.append(
            ReceiptLine(
                sku=sku,
                name=item.name,
                quantity=n,
                unit_price_cents=item.price_cents,
                total_cents=n * item.price_cents,
                confidence=confidence[sku],
            )
        )
    return lines


@dataclass
class _Run:
    """Units of one SKU picked together, at one price."""

    price: UnitPrice
    units: int


def _lines_at_pick_prices(
    store: Store, events: Sequence[CartEvent], prices: PriceSource
) -> list[ReceiptLine]:
    held: dict[str, list[_Run]] = {}  # SKU -> runs in pick order; put-backs take from the end
    owed: dict[str, int] = {}  # SKU -> units put back beyond what the cart held
    confidence: dict[str, float] = {}
    order = sorted(range(len(events)), key=lambda i: (events[i].event_time_s, i))
    for e in (events[i] for i in order):
        confidence[e.sku] = min(confidence.get(e.sku, 1.0), e.confidence)
        runs = held.setdefault(e.sku, [])
        if e.quantity_delta > 0:
            cancelled = min(e.quantity_delta, owed.get(e.sku, 0))
            owed[e.sku] = owed.get(e.sku, 0) - cancelled
            if e.quantity_delta > cancelled:
                _catalog_item(store, e.sku)
                price = prices.prices_at(e.sku, e.event_time_s)
                runs.append(_Run(price, e.quantity_delta - cancelled))
            continue
        back = -e.quantity_delta
        while back > 0 and runs:
            take = min(back, runs[-1].units)
            runs[-1].units -= take
            back -= take
            if runs[-1].units == 0:
                runs.pop()
        owed[e.sku] = owed.get(e.sku, 0) + back
    lines = []
    for sku in sorted(held):
        groups: dict[tuple[int, int | None, str | None], int] = {}  # in first-pick order
        for run in held[sku]:
            p = run.price
            key = (
                p.unit_price_cents,
                None if p.promotion is None else p.list_price_cents,
                p.promotion,
            )
            groups[key] = groups.get(key, 0) + run.units
        for (unit_cents, list_cents, promotion), n in groups.items():
            lines.append(
                ReceiptLine(
                    sku=sku,
                    name=_catalog_item(store, sku).name,
                    quantity=n,
                    unit_price_cents=unit_cents,
                    total_cents=n * unit_cents,
                    confidence=confidence[sku],
                    list_price_cents=list_cents,
                    promotion=promotion,
                )
            )
    return lines


def _catalog_item(store: Store, sku: str) -> CatalogItem:
    item = store.items.get(sku)
    if item is None:
        raise KeyError(
            f"SKU {sku!r} in the ledger is not in the catalog of store "
            f"{store.store_id!r}; restore the catalog entry"
        )
    return item


def review_reasons(
    record: SessionRecord, events: Sequence[CartEvent], review_below: float
) -> list[str]:
    """Human-readable reasons the visit needs a look, each naming the evidence."""
    reasons = []
    if record.track_id is None:
        reasons.append("visit was never bound to a track: no positional evidence for its cart")
    for e in events:
        if e.confidence < review_below:
            reasons.append(
                f"line {e.sku} {e.quantity_delta:+d} from shelf event {e.source_event_id} "
                f"has confidence {e.confidence:.2f} < {review_below:.2f} ({e.reason})"
            )
    negative: dict[str, int] = {}
    for e in events:
        negative[e.sku] = negative.get(e.sku, 0) + e.quantity_delta
    for sku, n in sorted(negative.items()):
        if n < 0:
            reasons.append(f"cart holds {n} of {sku}: more put back than picked")
    reasons.extend(r for r in record.review_reasons if r not in reasons)
    return reasons


def build_receipt(
    store: Store,
    record: SessionRecord,
    events: Sequence[CartEvent],
    *,
    issued_s: float,
    device_id: str,
    review_below: float,
    prices: PriceSource | None = None,
) -> Receipt:
    """The receipt of a closed session; ``prices`` as for :func:`price_lines`."""
    if record.exited_s is None:
        raise ValueError(
            f"session {record.session_id} has no exit time; close it before the receipt"
        )
    lines = price_lines(store, events, prices)
    reasons = review_reasons(record, events, review_below)
    return Receipt(
        id=receipt_id_for(record.session_id),
        event_time_s=issued_s,
        device_id=device_id,
        session_id=record.session_id,
        token=record.token,
        entered_s=record.entered_s,
        exited_s=record.exited_s,
        currency=store.catalog.currency,
        lines=lines,
        total_cents=sum(line.total_cents for line in lines),
        needs_review=bool(reasons),
        review_reasons=reasons,
    )
