"""Each role's main flow clicked through in headless Chromium against a running store.

The tests share one demo store (see conftest), so they run in file order:
the shopper's first, because the twin's first visitors enter about half a
minute after the store starts, and the page must be open before that to see
the cart fill without a reload. Every page is screenshotted as it goes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.browser.web_store import RunningStore, holds, shoot, sign_in

pytestmark = pytest.mark.browser

MS = 1000.0


def local_input(event_s: float) -> str:
    """An event time as a datetime-local value (the tabs run in UTC)."""
    return dt.datetime.fromtimestamp(round(event_s), dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def test_a_shopper_sees_the_cart_fill_live_gets_the_receipt_and_disputes_a_line(
    page: Any, store: RunningStore
) -> None:
    now = store.now_s()
    waiting = [s for s in store.shoppers() if s.enters_s > now + 4 * store.speed and s.basket_units]
    if not waiting:
        pytest.fail(
            f"every demo shopper had entered before the browser was ready (store clock {now}); "
            f"lower SPEED in tests/browser/conftest.py:\n{store.log_tail()}"
        )
    shopper = waiting[0]
    sign_in(page, shopper.username, shopper.password)
    assert page.url.endswith("/app/shopper.html")
    page.evaluate("window.sameDocument = true")  # gone if the page ever reloads
    assert page.text_content("#cart-status").startswith("You are not in the store")
    assert page.get_attribute("#cart", "data-lines") == "0"
    shoot(page, "shopper", "1-signed-in")

    # The twin walks in and picks: lines appear with no reload, pushed by /events.
    holds(
        page,
        "Number(document.getElementById('cart').dataset.lines) > 0",
        timeout_s=store.wall_until(shopper.exits_s),
    )
    assert page.locator("#live-state").text_content() == "live"
    assert page.text_content("#cart-status").startswith("In the store now")
    assert page.locator("[data-testid=cart-line]").count() >= 1
    shoot(page, "shopper", "2-cart-filling")

    receipt = page.locator("[data-testid=receipt]").first
    receipt.wait_for(timeout=store.wall_until(shopper.exits_s, slack_s=30) * MS)
    assert page.evaluate("window.sameDocument") is True
    lines = receipt.locator("[data-testid=receipt-line]")
    assert lines.count() >= 1
    assert page.get_attribute("[data-testid=visit]", "data-state") == "closed"
    shoot(page, "shopper", "3-receipt")

    sku = lines.first.get_attribute("data-sku")
    lines.first.locator("[data-testid=dispute]").click()
    form = page.locator("[data-testid=dispute-form]")
    form.locator("textarea").fill("I put this back on the shelf before leaving.")
    shoot(page, "shopper", "4-dispute-form")
    form.locator("[data-testid=dispute-send]").click()
    result = page.locator("[data-testid=dispute-result]")
    result.wait_for()
    assert result.text_content().startswith("Dispute sent")
    assert lines.first.get_attribute("data-sku") == sku
    assert page.locator("#error").is_hidden()
    shoot(page, "shopper", "5-disputed")


def test_a_new_shopper_registers_and_the_gate_scans_the_qr_code(
    page: Any, store: RunningStore
) -> None:
    page.goto("/")
    page.fill("#register-username", "walk-in")
    page.fill("#register-name", "Walk-in Shopper")
    page.fill("#register-password", "a long enough password")
    page.click("#register-submit")
    page.wait_for_selector("body[data-ready='true']")
    assert page.text_content("#who") == "Walk-in Shopper (shopper)"
    assert page.locator("[data-testid=visit]").count() == 0

    page.click("#scan-in")
    qr = page.locator("#qr-image")
    qr.wait_for()
    holds(page, "document.getElementById('qr-image').naturalWidth > 100")
    token = page.text_content("[data-testid=qr-token]")
    assert token and token.startswith("qr-")
    assert page.text_content("[data-testid=qr-expiry]").startswith("Valid for 15 minutes")
    shoot(page, "shopper", "6-scan-in-qr")

    status, answer = store.gate_scan(token)
    assert status == 202, answer
    visit = page.locator("[data-testid=visit]").first
    visit.wait_for()  # pushed live: the brain opened the visit
    assert visit.get_attribute("data-session-id") == answer["session_id"]
    assert visit.get_attribute("data-state") == "open"
    assert visit.locator(".badge").text_content() == "in the store"
    assert page.locator("#qr").is_hidden()
    assert page.text_content("#cart-status").startswith("In the store now")
    status, again = store.gate_scan(token)
    assert status == 409, again  # a code opens one visit only
    shoot(page, "shopper", "7-in-the-store")


def sign_in_as_manager(page: Any, store: RunningStore) -> None:
    store.wait_until(store.first_entry_s() + 60)  # something to count and draw
    manager = store.accounts["manager"]
    sign_in(page, manager["username"], manager["password"])


def test_a_manager_reads_the_dashboard_and_changes_the_heatmap_range(
    page: Any, store: RunningStore
) -> None:
    sign_in_as_manager(page, store)
    assert page.url.endswith("/app/manager.html")
    assert int(page.text_content("[data-testid=entries]")) >= 1
    assert page.locator("#error").is_hidden()
    heat = page.locator("#heatmap-img")
    holds(page, "document.getElementById('heatmap-img').naturalWidth > 100")
    assert float(heat.get_attribute("data-to-s")) - float(heat.get_attribute("data-from-s")) == (
        pytest.approx(900, abs=0.2)
    )
    assert page.locator("#occupancy-chart svg path.series").count() == 2
    assert page.locator("#dwell-chart svg rect.bar").count() >= 1
    assert page.locator("[data-testid=device]").count() >= 10
    assert page.locator("#alerts tr").count() >= 1  # alerts, or the line saying there are none
    assert page.locator("#replenishment tr").count() >= 1
    shoot(page, "manager", "1-dashboard")

    # Another time range: the image is fetched again for the new window.
    page.select_option("#heatmap-range", "300")
    holds(
        page,
        "document.getElementById('heatmap-img').dataset.toS"
        " - document.getElementById('heatmap-img').dataset.fromS < 301",
    )
    page.select_option("#heatmap-range", "custom")
    start, end = store.now_s() - 240, store.now_s() - 60
    page.fill("#heatmap-from", local_input(start))
    page.fill("#heatmap-to", local_input(end))
    page.click("#heatmap-show")
    holds(page, f"document.getElementById('heatmap-img').dataset.fromS == '{round(start):.1f}'")
    assert page.text_content("#heatmap-caption").startswith("From")
    shoot(page, "manager", "2-heatmap-range")


def test_a_manager_schedules_a_price_change_and_a_promotion(page: Any, store: RunningStore) -> None:
    sign_in_as_manager(page, store)
    # A price change from a chosen time: listed at once, in the catalog once it takes effect.
    row = page.locator("[data-testid=catalog-item][data-sku=SKU002]")
    old_cents = int(row.get_attribute("data-price-cents"))
    new_cents = old_cents + 11
    effective_s = store.now_s() + 10 * store.speed
    page.select_option("#price-sku", "SKU002")
    page.fill("#price-amount", f"{new_cents / 100:.2f}")
    page.fill("#price-from", local_input(effective_s))
    page.click("#price-submit")
    page.locator("#price-result").wait_for()
    change = page.locator("[data-testid=price-change][data-sku=SKU002]").first
    change.wait_for()
    assert change.locator("button").text_content() == "Cancel"  # not in effect yet
    assert int(row.get_attribute("data-price-cents")) == old_cents
    shoot(page, "manager", "3-price-scheduled")
    holds(
        page,
        "document.querySelector('[data-testid=catalog-item][data-sku=SKU002]')"
        f".dataset.priceCents == '{new_cents}'",
        timeout_s=store.wall_until(effective_s),
    )
    assert page.locator("#error").is_hidden()
    shoot(page, "manager", "4-price-in-effect")

    # A promotion from a chosen time, listed with its deal until it starts.
    page.fill("#promo-name", "Juice week")
    page.select_option("#promo-skus", ["SKU003", "SKU004"])
    page.fill("#promo-value", "20")
    page.fill("#promo-from", local_input(store.now_s() + 120))
    page.click("#promo-submit")
    promo = page.locator("[data-testid=promotion]").first
    promo.wait_for()
    assert "Juice week" in promo.text_content() and "20 % off" in promo.text_content()
    assert promo.locator("button").text_content() == "Cancel"
    shoot(page, "manager", "5-promotion")

    # A bad value is refused with the server's words.
    page.fill("#price-from", local_input(store.now_s() - 3600))
    page.click("#price-submit")
    error = page.locator("#error")
    error.wait_for()
    assert error.text_content().startswith("Could not schedule the price change:")


def test_loss_prevention_filters_the_queue_reviews_a_case_and_decides(
    page: Any, store: RunningStore
) -> None:
    store.wait_until(store.first_incident_over_s() + 20)  # the twin's first theft is over
    lp = store.accounts["loss_prevention"]
    sign_in(page, lp["username"], lp["password"])
    assert page.url.endswith("/app/loss-prevention.html")
    rows = page.locator("[data-testid=case-row]")
    rows.first.wait_for(timeout=60_000)
    new_rows = page.locator("[data-testid=case-row][data-state=new]")
    new_rows.first.wait_for(timeout=60_000)
    shoot(page, "loss_prevention", "1-queue")

    # A case a rule found (with tracks to show) rather than a shopper's dispute, if there is one.
    rules = [new_rows.nth(n).get_attribute("data-rule") for n in range(new_rows.count())]
    rule = next((r for r in rules if r != "dispute"), rules[0])
    assert rule is not None
    page.select_option("#filter-rule", rule)
    page.select_option("#filter-state", "new")
    holds(
        page,
        "[...document.querySelectorAll('[data-testid=case-row]')]"
        f".every(r => r.dataset.rule == '{rule}' && r.dataset.state == 'new')",
    )
    page.select_option("#sort-key", "confidence")
    holds(
        page,
        "[...document.querySelectorAll('[data-testid=case-row]')]"
        ".map(r => Number(r.dataset.confidence)).every((x, i, c) => i == 0 || c[i - 1] >= x)",
    )
    assert rows.count() >= 1
    case_id = rows.first.get_attribute("data-case-id")
    shoot(page, "loss_prevention", "2-filtered")

    rows.first.locator("[data-testid=open-case]").click()
    detail = page.locator("[data-testid=case-detail]")
    holds(page, f"document.getElementById('case-detail').dataset.caseId == '{case_id}'")
    assert page.locator("[data-testid=timeline-entry]").count() >= 1
    images = page.locator("[data-testid=evidence-image]")
    for n in range(images.count()):  # the simulated-positions demo renders no cameras
        images.nth(n).scroll_into_view_if_needed()
        assert images.nth(n).evaluate("img => img.complete && img.naturalWidth > 0")
    if images.count() == 0:
        assert "No camera pictures" in page.text_content("#case-evidence")
    assert page.text_content("[data-testid=case-state]") == "new"
    shoot(page, "loss_prevention", "3-case")

    page.click("[data-testid=to-in_review]")
    holds(page, "document.getElementById('case-detail').dataset.state == 'in_review'")
    page.fill("#transition-note", "Watched the tracks: the shopper paid for everything.")
    page.click("[data-testid=to-no_theft]")
    holds(page, "document.getElementById('case-detail').dataset.state == 'no_theft'")
    page.fill("#note-text", "Told the store manager.")
    page.click("#note-submit")
    page.locator("[data-testid=history-entry][data-action=note]").last.wait_for()
    history = page.text_content("#case-history")
    assert "transition → in review by loss_prevention" in history
    assert "the shopper paid for everything" in history
    assert "Told the store manager." in history
    assert detail.locator("[data-testid=to-resolved]").is_visible()
    # The case left the "new" filter it was found under.
    holds(page, f"!document.querySelector('[data-testid=case-row][data-case-id=\"{case_id}\"]')")
    assert page.locator("#error").is_hidden()
    shoot(page, "loss_prevention", "4-decided")
