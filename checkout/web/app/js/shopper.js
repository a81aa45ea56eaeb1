// The shopper's face: scan in with a QR code, watch the cart fill, read receipts, dispute a line.
import {
  api,
  attempt,
  byId,
  clearError,
  clock,
  debounce,
  el,
  fill,
  listen,
  money,
  setCurrency,
  startPage,
} from "./common.js";

const VISIT_STATES = { open: "in the store", bound: "in the store", closed: "finished" };

// Per receipt line: an open dispute form's text, or the answer to a dispute sent.
const disputes = new Map(); // key `${receipt_id}|${index}` -> {open, text, result, error}
let receiptsShown = "";

async function scanIn() {
  clearError();
  const button = byId("scan-in");
  button.disabled = true;
  const issued = await attempt("Could not make a scan-in code", () =>
    api("/me/scan-in", { method: "POST" }),
  );
  button.disabled = false;
  if (!issued) return;
  const image = byId("qr-image");
  // As an image, the SVG is only drawn: nothing in it can run.
  image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(issued.qr_svg);
  byId("qr-token").textContent = issued.token;
  // Codes expire by the wall clock (they are about people, not store events), like this one.
  const minutes = Math.max(0, Math.round((issued.expires_at_s * 1000 - Date.now()) / 60000));
  byId("qr-expiry").textContent =
    `Valid for ${minutes} minutes (until ${clock(issued.expires_at_s)}), ` +
    `for one visit to store ${issued.store_id}.`;
  byId("qr").hidden = false;
  button.textContent = "New code";
}

async function loadCart() {
  const cart = await attempt("Could not load your cart", () => api("/me/cart"));
  if (!cart) return;
  setCurrency(cart.currency);
  const status = byId("cart-status");
  if (!cart.session_id) {
    status.textContent = "You are not in the store. Scan in to start shopping.";
  } else {
    status.textContent = cart.lines.length
      ? `In the store now: ${cart.lines.reduce((n, l) => n + l.quantity, 0)} items so far.`
      : "In the store now: your cart is empty so far.";
  }
  fill(
    byId("cart-lines"),
    cart.lines.map((line) =>
      el(
        "tr",
        { "data-testid": "cart-line", "data-sku": line.sku },
        el("td", {}, line.name, line.promotion ? el("span", { class: "badge" }, line.promotion) : null),
        el("td", { class: "num" }, line.quantity),
        el("td", { class: "num" }, money(line.unit_price_cents, cart.currency)),
        el("td", { class: "num" }, money(line.total_cents, cart.currency)),
      ),
    ),
  );
  byId("cart-total").textContent = money(cart.total_cents, cart.currency);
  byId("cart").dataset.lines = String(cart.lines.length);
}

async function loadVisits() {
  const visits = await attempt("Could not load your visits", () => api("/me/visits"));
  if (!visits) return;
  if (visits.some((v) => v.state !== "closed")) byId("qr").hidden = true; // the code was used
  fill(
    byId("visits"),
    visits.length
      ? visits.map((v) =>
          el(
            "tr",
            { "data-testid": "visit", "data-session-id": v.session_id, "data-state": v.state },
            el("td", {}, clock(v.entered_s, true)),
            el("td", {}, v.exited_s ? clock(v.exited_s) : "still in the store"),
            el("td", {}, el("span", { class: `badge ${v.state}` }, VISIT_STATES[v.state] || v.state)),
            el("td", {}, v.receipt_id ? "yes" : "–"),
          ),
        )
      : el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No visits yet.")),
  );
}

function disputeCell(receipt, line, index) {
  const key = `${receipt.id}|${index}`;
  const state = disputes.get(key) || {};
  const rerender = () => renderReceipts(lastReceipts);
  if (state.result) {
    const { case: made, created } = state.result;
    return el(
      "p",
      { class: "notice", "data-testid": "dispute-result", role: "status" },
      created
        ? `Dispute sent: staff will review it (case ${made.case_id}, ${made.state}).`
        : `This line is already disputed (case ${made.case_id}, ${made.state}).`,
    );
  }
  if (!state.open) {
    return el(
      "button",
      {
        type: "button",
        class: "small",
        "data-testid": "dispute",
        "data-sku": line.sku,
        "aria-label": `Dispute ${line.name}`,
        onclick: () => {
          disputes.set(key, { open: true, text: "" });
          rerender();
          document.getElementById(`reason-${receipt.id}-${index}`)?.focus();
        },
      },
      "Dispute",
    );
  }
  const reasonId = `reason-${receipt.id}-${index}`;
  const textarea = el("textarea", { id: reasonId, required: true, maxlength: 1000 });
  textarea.value = state.text || "";
  textarea.addEventListener("input", () => {
    state.text = textarea.value;
  });
  return el(
    "form",
    {
      class: "dispute-form stack",
      "data-testid": "dispute-form",
      onsubmit: async (event) => {
        event.preventDefault();
        const reason = textarea.value.trim();
        if (!reason) {
          state.error = "say what is wrong with the line";
          rerender();
          return;
        }
        clearError();
        const answer = await attempt(`Could not send the dispute of ${line.name}`, () =>
          api(`/me/receipts/${encodeURIComponent(receipt.id)}/disputes`, {
            method: "POST",
            body: { sku: line.sku, reason },
          }),
        );
        if (answer) disputes.set(key, { result: answer });
        rerender();
      },
    },
    el("label", { for: reasonId }, `What is wrong with “${line.name}”?`),
    textarea,
    state.error ? el("p", { class: "error", role: "alert" }, state.error) : null,
    el(
      "div",
      { class: "actions" },
      el("button", { type: "submit", class: "primary small", "data-testid": "dispute-send" }, "Send dispute"),
      el(
        "button",
        {
          type: "button",
          class: "small",
          onclick: () => {
            disputes.delete(key);
            rerender();
          },
        },
        "Cancel",
      ),
    ),
  );
}

let lastReceipts = [];

function renderReceipts(receipts) {
  lastReceipts = receipts;
  fill(
    byId("receipts"),
    receipts.length
      ? receipts.map((r) =>
          el(
            "article",
            { class: "receipt", "data-testid": "receipt", "data-receipt-id": r.id },
            el(
              "header",
              {},
              el("strong", {}, `Visit of ${clock(r.entered_s, true)} – ${clock(r.exited_s)}`),
              el("strong", { "data-testid": "receipt-total" }, money(r.total_cents, r.currency)),
            ),
            r.needs_review
              ? el("p", { class: "hint" }, "Staff are checking this receipt before it is final.")
              : null,
            el(
              "table",
              {},
              el(
                "thead",
                {},
                el(
                  "tr",
                  {},
                  el("th", {}, "Product"),
                  el("th", { class: "num" }, "Qty"),
                  el("th", { class: "num" }, "Unit"),
                  el("th", { class: "num" }, "Total"),
                  el("th", {}, ""),
                ),
              ),
              el(
                "tbody",
                {},
                r.lines.length
                  ? r.lines.map((line, i) =>
                      el(
                        "tr",
                        { "data-testid": "receipt-line", "data-sku": line.sku },
                        el(
                          "td",
                          {},
                          line.name,
                          line.promotion ? " " : null,
                          line.promotion ? el("span", { class: "badge" }, line.promotion) : null,
                        ),
                        el("td", { class: "num" }, line.quantity),
                        el("td", { class: "num" }, money(line.unit_price_cents, r.currency)),
                        el("td", { class: "num" }, money(line.total_cents, r.currency)),
                        el("td", {}, disputeCell(r, line, i)),
                      ),
                    )
                  : el("tr", {}, el("td", { colspan: 5, class: "muted" }, "Nothing was bought.")),
              ),
            ),
          ),
        )
      : el("p", { class: "muted" }, "No receipts yet."),
  );
}

async function loadReceipts() {
  const receipts = await attempt("Could not load your receipts", () => api("/me/receipts"));
  if (!receipts) return;
  const shown = receipts.map((r) => r.id).join(",");
  if (shown === receiptsShown) return; // keep any dispute being typed
  receiptsShown = shown;
  renderReceipts(receipts);
}

const me = await startPage("shopper", ["shopper"]);
if (me) {
  byId("scan-in").addEventListener("click", scanIn);
  const cart = debounce(loadCart, 250);
  const visits = debounce(loadVisits, 250);
  const receipts = debounce(loadReceipts, 250);
  await Promise.all([loadCart(), loadVisits(), loadReceipts()]);
  listen({
    cart: () => cart(),
    visit: () => {
      visits();
      cart();
    },
    receipt: () => {
      receipts();
      visits();
      cart();
    },
  });
  document.body.dataset.ready = "true";
}
