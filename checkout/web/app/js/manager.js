// The manager's face: footfall, heatmap, occupancy and dwell charts, stock alerts and
// replenishment, device health, and prices and promotions scheduled from a chosen time.
import { barChart, lineChart } from "./charts.js";
import {
  api,
  attempt,
  blobUrl,
  byId,
  clearError,
  clock,
  debounce,
  duration,
  el,
  fill,
  fromLocalInput,
  listen,
  money,
  percent,
  setCurrency,
  startPage,
  toLocalInput,
} from "./common.js";

const page = {
  nowS: null, // the store's clock (event time), refreshed from /health
  firstS: null, // first footfall data
  currency: "EUR",
  names: new Map(), // sku -> product name
  catalogAt: null, // null: prices now
  heatUrl: null,
};

const nameOf = (sku) => page.names.get(sku) || sku;

async function loadClock() {
  const health = await attempt("Could not read the store's clock", () => api("/health"));
  if (!health) return;
  if (typeof health.now_s === "number") page.nowS = health.now_s;
  byId("store-clock").textContent = page.nowS ? clock(page.nowS, true) : "not started";
  byId("store-clock").dataset.nowS = String(page.nowS || "");
}

async function loadStore() {
  const stores = await attempt("Could not load the store", () => api("/stores"));
  if (!stores || !stores.length) return;
  const store = stores[0];
  byId("store-title").textContent = `${store.name} (${store.store_id})`;
  if (!page.nowS && typeof store.now_s === "number") page.nowS = store.now_s;
  const chips = Object.entries(store.devices).map(([health, n]) =>
    el("span", { class: `badge ${health}` }, `${n} ${health}`),
  );
  fill(byId("device-counts"), el("span", {}, "Devices:"), chips);
}

// --- footfall, occupancy, dwell ---

function stat(label, value, testid) {
  return el(
    "div",
    { class: "stat" },
    el("div", { class: "value", "data-testid": testid }, value),
    el("div", { class: "label" }, label),
  );
}

async function loadFootfall() {
  const report = await attempt("Could not load footfall", () => api("/footfall"));
  if (!report) return;
  page.firstS = report.first_s;
  fill(
    byId("footfall"),
    stat("in the store now", report.occupancy_now, "occupancy-now"),
    stat("entries", report.entries, "entries"),
    stat("exits", report.exits, "exits"),
    stat("bought something", percent(report.conversion), "conversion"),
    stat("median visit", duration(report.visit_dwell.median_s), "visit-dwell"),
  );
  const samples = report.occupancy || [];
  fill(
    byId("occupancy-chart"),
    lineChart(
      [
        { label: "counted at the gates", points: samples.map((s) => [s.time_s, s.counted]) },
        { label: "seen by the cameras", points: samples.map((s) => [s.time_s, s.tracked]) },
      ],
      {
        title: "Shoppers in the store over time",
        yLabel: "people",
        xFormat: (t) => clock(t).slice(0, 5),
        width: chartWidth("occupancy-chart"),
      },
    ),
  );
  const zones = Object.entries(report.zones || {}).sort(([a], [b]) => a.localeCompare(b));
  fill(
    byId("dwell-chart"),
    barChart(
      zones.map(([zone, d]) => ({ label: zone, value: d.median_s, count: d.count })),
      {
        title: "Median dwell per aisle zone",
        format: (v) => duration(v),
        width: chartWidth("dwell-chart"),
      },
    ),
  );
}

// Charts are drawn at their box's width, so one unit is one pixel and the text stays legible.
const chartWidth = (id) => Math.max(320, Math.round(byId(id).clientWidth || 480));

function heatWindow() {
  const range = byId("heatmap-range").value;
  if (range === "custom") {
    return [fromLocalInput(byId("heatmap-from").value), fromLocalInput(byId("heatmap-to").value)];
  }
  const to = page.nowS;
  if (to === null) return [null, null];
  if (range === "all") return [page.firstS ?? to - 3600, to];
  return [to - Number(range), to];
}

async function loadHeatmap() {
  const [from, to] = heatWindow();
  const caption = byId("heatmap-caption");
  if (from === null || to === null) {
    caption.textContent = "Choose both times.";
    return;
  }
  if (!(to > from)) {
    caption.textContent = "The end must come after the start.";
    return;
  }
  const url = await attempt("Could not draw the heatmap", () =>
    blobUrl(`/heatmap.png?from_s=${from.toFixed(1)}&to_s=${to.toFixed(1)}`),
  );
  if (!url) return;
  const img = byId("heatmap-img");
  if (page.heatUrl) URL.revokeObjectURL(page.heatUrl);
  page.heatUrl = url;
  img.src = url;
  img.alt = `Heatmap of the floor plan: time shoppers spent per spot from ${clock(from)} to ${clock(to)}`;
  img.dataset.fromS = from.toFixed(1);
  img.dataset.toS = to.toFixed(1);
  caption.textContent = `From ${clock(from, true)} to ${clock(to)} (${duration(to - from)}). Red: most time spent.`;
}

function wireHeatmap() {
  const range = byId("heatmap-range");
  range.addEventListener("change", () => {
    const custom = range.value === "custom";
    byId("heatmap-from").disabled = !custom;
    byId("heatmap-to").disabled = !custom;
    if (custom && page.nowS) {
      byId("heatmap-from").value ||= toLocalInput(page.nowS - 600);
      byId("heatmap-to").value ||= toLocalInput(page.nowS);
    }
    if (!custom) loadHeatmap();
  });
  byId("heatmap-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearError();
    loadHeatmap();
  });
}

// --- stock ---

async function loadAlerts() {
  const alerts = await attempt("Could not load stock alerts", () => api("/alerts?limit=100"));
  if (!alerts) return;
  const rows = [...alerts].sort(
    (a, b) => (a.cleared_s === null) === (b.cleared_s === null)
      ? b.raised_s - a.raised_s
      : a.cleared_s === null ? -1 : 1,
  );
  fill(
    byId("alerts"),
    rows.length
      ? rows.map((a) =>
          el(
            "tr",
            { "data-testid": "alert", "data-alert-id": a.alert_id, "data-open": String(a.cleared_s === null) },
            el("td", {}, el("span", { class: `badge ${a.kind}` }, a.kind.replace("_", " "))),
            el("td", {}, nameOf(a.sku)),
            el("td", {}, a.plate_id),
            el("td", { class: "num" }, a.cleared_s === null ? a.units_at_raise : a.units_at_clear),
            el("td", {}, clock(a.raised_s)),
            el("td", {}, a.cleared_s === null ? "open" : `cleared ${clock(a.cleared_s)}`),
          ),
        )
      : el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No stock alerts.")),
  );
}

async function loadReplenishment() {
  const lists = await attempt("Could not load the replenishment list", () => api("/replenishment"));
  if (!lists) return;
  const lines = Object.values(lists).flat();
  fill(
    byId("replenishment"),
    lines.length
      ? lines.map((l) =>
          el(
            "tr",
            { "data-testid": "replenishment-line", "data-plate-id": l.plate_id },
            el("td", {}, l.gondola_id),
            el("td", {}, nameOf(l.sku), l.out_of_stock ? el("span", { class: "badge stockout" }, "empty") : null),
            el("td", {}, l.plate_id),
            el("td", { class: "num" }, `${l.units}/${l.capacity_units}`),
            el("td", { class: "num" }, l.fill_units),
          ),
        )
      : el("tr", {}, el("td", { colspan: 5, class: "muted" }, "Every shelf is above par.")),
  );
}

// --- devices ---

async function loadDevices() {
  const devices = await attempt("Could not load device health", () => api("/devices"));
  if (!devices) return;
  const order = { offline: 0, stale: 1, undeclared: 2, unknown: 3, ok: 4 };
  devices.sort((a, b) => (order[a.health] ?? 9) - (order[b.health] ?? 9) || a.device_id.localeCompare(b.device_id));
  fill(
    byId("devices"),
    devices.map((d) =>
      el(
        "tr",
        { "data-testid": "device", "data-device-id": d.device_id, "data-health": d.health },
        el("td", { title: d.detail, class: "nowrap" }, d.device_id),
        el("td", {}, d.role === "service" ? `${d.kind} (service)` : d.kind),
        el("td", {}, el("span", { class: `badge ${d.health}` }, d.health)),
        el("td", {}, d.status),
        el("td", { class: "num" }, d.silent_s === null ? "–" : duration(d.silent_s)),
      ),
    ),
  );
}

// --- prices and promotions ---

async function loadCatalog() {
  const query = page.catalogAt === null ? "" : `?at_s=${page.catalogAt.toFixed(1)}`;
  const catalog = await attempt("Could not load the catalog", () => api(`/catalog${query}`));
  if (!catalog) return;
  page.currency = catalog.currency;
  setCurrency(catalog.currency);
  document.querySelectorAll(".currency").forEach((n) => {
    n.textContent = catalog.currency;
  });
  const firstTime = page.names.size === 0;
  for (const item of catalog.items) page.names.set(item.sku, item.name);
  if (firstTime) fillProductPickers(catalog.items);
  byId("catalog-caption").textContent =
    page.catalogAt === null ? `Prices now (${clock(catalog.at_s)}).` : `Prices at ${clock(catalog.at_s, true)}.`;
  fill(
    byId("catalog"),
    catalog.items.map((item) =>
      el(
        "tr",
        { "data-testid": "catalog-item", "data-sku": item.sku, "data-price-cents": item.unit_price_cents },
        el("td", {}, item.sku),
        el("td", {}, item.name),
        el("td", { class: "num" }, money(item.list_price_cents, catalog.currency)),
        el("td", { class: "num", "data-testid": "catalog-price" }, money(item.unit_price_cents, catalog.currency)),
        el("td", {}, item.promotion || ""),
      ),
    ),
  );
}

function fillProductPickers(items) {
  const options = () => items.map((i) => el("option", { value: i.sku }, `${i.name} (${i.sku})`));
  fill(byId("price-sku"), options());
  fill(byId("promo-skus"), options());
}

function cancelButton(label, path, what) {
  return el(
    "button",
    {
      type: "button",
      class: "small danger",
      onclick: async () => {
        clearError();
        const done = await attempt(`Could not cancel the ${what}`, () => api(path, { method: "DELETE" }));
        if (done) loadPricing();
      },
    },
    label,
  );
}

async function loadPriceChanges() {
  const changes = await attempt("Could not load the price changes", () => api("/prices/changes"));
  if (!changes) return;
  changes.sort((a, b) => b.effective_from_s - a.effective_from_s);
  fill(
    byId("price-changes"),
    changes.length
      ? changes.map((c) =>
          el(
            "tr",
            { "data-testid": "price-change", "data-sku": c.sku, "data-change-id": c.id },
            el("td", {}, nameOf(c.sku)),
            el("td", { class: "num" }, money(c.unit_price_cents)),
            el("td", {}, clock(c.effective_from_s, true)),
            el("td", {}, c.set_by || "–"),
            el(
              "td",
              {},
              page.nowS !== null && c.effective_from_s > page.nowS
                ? cancelButton("Cancel", `/prices/changes/${c.id}`, "price change")
                : el("span", { class: "badge ok" }, "in effect"),
            ),
          ),
        )
      : el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No price changes scheduled.")),
  );
}

async function loadPromotions() {
  const promos = await attempt("Could not load the promotions", () => api("/promotions"));
  if (!promos) return;
  promos.sort((a, b) => b.effective_from_s - a.effective_from_s);
  fill(
    byId("promotions"),
    promos.length
      ? promos.map((p) => {
          const started = page.nowS !== null && p.effective_from_s <= page.nowS;
          const ended = p.until_s !== null && page.nowS !== null && p.until_s <= page.nowS;
          return el(
            "tr",
            { "data-testid": "promotion", "data-promotion-id": p.id },
            el("td", {}, p.name),
            el("td", {}, p.skus.map(nameOf).join(", ")),
            el("td", {}, p.kind === "percent_off" ? `${p.value} % off` : `at ${money(p.value)}`),
            el("td", {}, clock(p.effective_from_s, true)),
            el("td", {}, p.until_s === null ? "open" : clock(p.until_s, true)),
            el(
              "td",
              {},
              ended
                ? el("span", { class: "badge" }, "ended")
                : started
                  ? endButton(p)
                  : cancelButton("Cancel", `/promotions/${p.id}`, "promotion"),
            ),
          );
        })
      : el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No promotions.")),
  );
}

function endButton(promo) {
  return el(
    "button",
    {
      type: "button",
      class: "small danger",
      onclick: async () => {
        clearError();
        const done = await attempt("Could not end the promotion", () =>
          api(`/promotions/${promo.id}/end`, { method: "POST" }),
        );
        if (done) loadPricing();
      },
    },
    "End now",
  );
}

function loadPricing() {
  return Promise.all([loadCatalog(), loadPriceChanges(), loadPromotions()]);
}

function defaultTimes() {
  if (page.nowS === null) return;
  const soon = toLocalInput(Math.ceil((page.nowS + 60) / 60) * 60);
  if (!byId("price-from").value) byId("price-from").value = soon;
  if (!byId("promo-from").value) byId("promo-from").value = soon;
  if (!byId("catalog-at").value) byId("catalog-at").value = toLocalInput(page.nowS);
}

function flash(id, text) {
  const box = byId(id);
  box.textContent = text;
  box.hidden = false;
}

function wirePricing() {
  byId("promo-kind").addEventListener("change", () => {
    const percentOff = byId("promo-kind").value === "percent_off";
    byId("promo-value-label").textContent = percentOff ? "Percent off" : "Unit price in cents";
  });
  byId("price-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    byId("price-result").hidden = true;
    const from = fromLocalInput(byId("price-from").value);
    const amount = Number.parseFloat(byId("price-amount").value);
    if (from === null || Number.isNaN(amount)) {
      flash("price-result", "Give a price and the time it takes effect from.");
      return;
    }
    const sku = byId("price-sku").value;
    const made = await attempt("Could not schedule the price change", () =>
      api("/prices/changes", {
        method: "POST",
        body: { sku, unit_price_cents: Math.round(amount * 100), effective_from_s: from },
      }),
    );
    if (!made) return;
    flash(
      "price-result",
      `${nameOf(sku)} costs ${money(made.unit_price_cents)} from ${clock(made.effective_from_s, true)}.`,
    );
    loadPricing();
  });
  byId("promo-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    byId("promo-result").hidden = true;
    const skus = [...byId("promo-skus").selectedOptions].map((o) => o.value);
    const from = fromLocalInput(byId("promo-from").value);
    const until = fromLocalInput(byId("promo-until").value);
    const value = Number.parseInt(byId("promo-value").value, 10);
    const made = await attempt("Could not schedule the promotion", () =>
      api("/promotions", {
        method: "POST",
        body: {
          name: byId("promo-name").value.trim(),
          skus,
          kind: byId("promo-kind").value,
          value,
          effective_from_s: from,
          until_s: until,
        },
      }),
    );
    if (!made) return;
    flash("promo-result", `“${made.name}” runs from ${clock(made.effective_from_s, true)}.`);
    loadPricing();
  });
  byId("catalog-form").addEventListener("submit", (event) => {
    event.preventDefault();
    page.catalogAt = fromLocalInput(byId("catalog-at").value);
    loadCatalog();
  });
  byId("catalog-now").addEventListener("click", () => {
    page.catalogAt = null;
    if (page.nowS !== null) byId("catalog-at").value = toLocalInput(page.nowS);
    loadCatalog();
  });
}

// --- start ---

const me = await startPage("manager", ["manager", "admin"]);
if (me) {
  wireHeatmap();
  wirePricing();
  await loadClock();
  await Promise.all([loadStore(), loadFootfall(), loadPricing()]);
  defaultTimes();
  await Promise.all([loadHeatmap(), loadAlerts(), loadReplenishment(), loadDevices()]);
  const footfall = debounce(loadFootfall, 1000);
  const stock = debounce(() => Promise.all([loadAlerts(), loadReplenishment()]), 1000);
  const devices = debounce(() => Promise.all([loadDevices(), loadStore()]), 1000);
  listen({
    footfall: () => footfall(),
    visit: () => footfall(),
    alert: () => stock(),
    cart: () => stock(),
    device: () => devices(),
    resync: () => {
      footfall();
      stock();
      devices();
      loadPricing();
    },
  });
  // The clock moves on with nothing on the bus: prices now, relative heatmap windows.
  setInterval(async () => {
    await loadClock();
    if (page.catalogAt === null) loadPricing();
  }, 3000);
  setInterval(() => {
    if (byId("heatmap-range").value !== "custom") loadHeatmap();
    footfall();
  }, 15000);
  document.body.dataset.ready = "true";
}
