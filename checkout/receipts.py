"""Receipts: a closed visit's cart, priced from the catalog, with confidence and review flags.

Money is integer minor units (cents). A line's confidence is the lowest
confidence among the ledger lines that built it; the visit needs review when
any ledger line is below ``review_below``, when an unexplained event was
attributed to it, or when it was never bound to a track (its cart is then
built from no positional evidence at all).
"""

from __future__ import annotations

from collections.abc import Sequence

from checkout.ids import derived_id
from checkout.ledger import SessionRecord
from iot.payloads import CartEvent, Receipt, ReceiptLine
from iot.store import Store

__all__ = ["build_receipt", "price_lines", "receipt_id_for", "review_reasons"]


def receipt_id_for(session_id: str) -> str:
    """Exactly one receipt per session: its id is derived from the session id."""
    return derived_id("r-", session_id)


def price_lines(store: Store, events: Sequence[CartEvent]) -> list[ReceiptLine]:
    """Fold ledger lines into priced receipt lines (SKUs netted to zero or below left out)."""
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
) -> Receipt:
    """The receipt of a closed session."""
    if record.exited_s is None:
        raise ValueError(
            f"session {record.session_id} has no exit time; close it before the receipt"
        )
    lines = price_lines(store, events)
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
