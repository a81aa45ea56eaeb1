// The loss-prevention face: a filtered, sorted case queue; a case's timeline, evidence and
// history; disposition buttons for exactly the moves the server's workflow allows; notes.
import { trackPlot } from "./charts.js";
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
  percent,
  setCurrency,
  startPage,
} from "./common.js";

const MOVE_LABELS = {
  in_review: "Start review",
  confirmed_theft: "Confirm theft",
  no_theft: "No theft",
  operational_issue: "Operational issue",
  resolved: "Resolve",
};
const OPEN = "";
const ALL = "*";
const state = { workflow: null, openCaseId: null, loadedCase: null };

const words = (s) => s.replaceAll("_", " ");

function queueQuery() {
  const params = new URLSearchParams();
  const chosen = byId("filter-state").value;
  if (chosen === OPEN) {
    for (const s of state.workflow.states) if (s !== "resolved") params.append("state", s);
  } else if (chosen !== ALL) {
    params.append("state", chosen);
  }
  const rule = byId("filter-rule").value;
  if (rule) params.append("rule", rule);
  params.set("sort", byId("sort-key").value);
  params.set("descending", String(byId("sort-descending").checked));
  params.set("limit", "200");
  return params.toString();
}

async function loadCounts() {
  const counts = await attempt("Could not count the cases", () => api("/cases/counts"));
  if (!counts) return;
  fill(
    byId("case-counts"),
    state.workflow.states.map((s) =>
      el("span", { class: `badge ${s}`, "data-testid": `count-${s}` }, `${words(s)}: ${counts[s] || 0}`),
    ),
  );
}

async function loadQueue() {
  const cases = await attempt("Could not load the case queue", () => api(`/cases?${queueQuery()}`));
  if (!cases) return;
  byId("queue-caption").textContent = `${cases.length} case${cases.length === 1 ? "" : "s"} shown.`;
  fill(
    byId("case-queue"),
    cases.length
      ? cases.map((c) =>
          el(
            "tr",
            {
              "data-testid": "case-row",
              "data-confidence": c.confidence,
              "data-case-id": c.case_id,
              "data-state": c.state,
              "data-rule": c.rule,
              class: c.case_id === state.openCaseId ? "selected" : null,
            },
            el("td", {}, clock(c.incident_s)),
            el("td", { title: c.summary }, words(c.rule)),
            el("td", {}, el("span", { class: `badge ${c.state}` }, words(c.state))),
            el("td", { class: "num" }, percent(c.confidence)),
            el("td", { class: "num" }, c.amount_cents ? money(c.amount_cents) : "–"),
            el(
              "td",
              {},
              el(
                "button",
                {
                  type: "button",
                  class: "small",
                  "data-testid": "open-case",
                  "aria-label": `Open case ${c.case_id}`,
                  onclick: () => openCase(c.case_id),
                },
                "Open",
              ),
            ),
          ),
        )
      : el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No cases match.")),
  );
}

function fact(label, value) {
  return [el("dt", {}, label), el("dd", {}, value)];
}

function renderCase(c) {
  state.loadedCase = c;
  byId("case-empty").hidden = true;
  byId("case-body").hidden = false;
  byId("case-detail").dataset.caseId = c.case_id;
  byId("case-detail").dataset.state = c.state;
  byId("case-title").textContent = `Case ${c.case_id}`;
  byId("case-summary").textContent = c.summary;
  fill(
    byId("case-facts"),
    fact("State", el("span", { class: `badge ${c.state}`, "data-testid": "case-state" }, words(c.state))),
    fact("Rule", [words(c.rule), ...c.related_rules.map((r) => `, ${words(r)}`)]),
    fact("Incident", `${clock(c.incident_s, true)}${c.last_incident_s > c.incident_s ? ` – ${clock(c.last_incident_s)}` : ""}`),
    fact("Confidence", percent(c.confidence)),
    fact("Amount", c.amount_cents ? money(c.amount_cents) : "–"),
    c.session_id ? fact("Visit", c.session_id) : [],
    c.sku ? fact("Product", c.sku) : [],
    c.plate_id ? fact("Plate", c.plate_id) : [],
    c.track_ids.length ? fact("Tracks", c.track_ids.join(", ")) : [],
    c.assignee ? fact("Reviewer", c.assignee) : [],
  );
  const moves = state.workflow.transitions[c.state] || [];
  fill(
    byId("case-actions"),
    moves.map((to) =>
      el(
        "button",
        {
          type: "button",
          class: state.workflow.dispositions.includes(to) ? "primary" : "",
          "data-testid": `to-${to}`,
          onclick: () => move(c.case_id, to),
        },
        to === "in_review" && c.state !== "new" ? "Reopen" : MOVE_LABELS[to] || words(to),
      ),
    ),
  );
  const timeline = [...c.evidence.timeline].sort((a, b) => a.time_s - b.time_s);
  fill(
    byId("case-timeline"),
    timeline.length
      ? timeline.map((t) =>
          el(
            "li",
            { "data-testid": "timeline-entry" },
            el("time", {}, clock(t.time_s)),
            el("span", { class: "badge" }, words(t.kind)),
            " ",
            t.text,
          ),
        )
      : el("li", { class: "muted" }, "No timeline yet."),
  );
  fill(
    byId("case-tracks"),
    c.evidence.tracks.length
      ? trackPlot(c.evidence.tracks, {
          title: "Where the people in this case walked",
          width: Math.max(320, Math.round(byId("case-tracks").clientWidth || 480)),
        })
      : el("p", { class: "muted" }, "No tracks for this case."),
  );
  fill(
    byId("case-evidence"),
    c.evidence.snapshots.length
      ? c.evidence.snapshots.map((s, n) =>
          el(
            "figure",
            {},
            el("img", {
              src: `/cases/${encodeURIComponent(c.case_id)}/snapshots/${n}`,
              alt: `Camera ${s.camera_id} at ${clock(s.time_s)} (faces blurred)`,
              "data-testid": "evidence-image",
              loading: "lazy",
            }),
            el("figcaption", {}, `${s.camera_id}, ${clock(s.time_s)}`),
          ),
        )
      : el("p", { class: "muted" }, "No camera pictures for this case."),
  );
  fill(
    byId("case-history"),
    c.history.map((h) =>
      el(
        "li",
        { "data-testid": "history-entry", "data-action": h.action },
        el("time", {}, clock(h.time_s)),
        words(h.action),
        h.to_state ? ` → ${words(h.to_state)}` : "",
        h.reviewer ? ` by ${h.reviewer}` : "",
        h.note ? `: ${h.note}` : "",
      ),
    ),
  );
}

async function openCase(caseId) {
  clearError();
  state.openCaseId = caseId;
  const c = await attempt(`Could not open case ${caseId}`, () => api(`/cases/${encodeURIComponent(caseId)}`));
  if (!c) return;
  renderCase(c);
  document.querySelectorAll("#case-queue tr").forEach((row) => {
    row.classList.toggle("selected", row.dataset.caseId === caseId);
  });
}

async function move(caseId, to) {
  clearError();
  const note = byId("transition-note").value.trim();
  const moved = await attempt(`Could not move the case to “${words(to)}”`, () =>
    api(`/cases/${encodeURIComponent(caseId)}/transition`, {
      method: "POST",
      body: { to_state: to, note },
    }),
  );
  if (!moved) return;
  byId("transition-note").value = "";
  renderCase(moved);
  loadQueue();
  loadCounts();
}

async function addNote(event) {
  event.preventDefault();
  clearError();
  const caseId = state.openCaseId;
  const text = byId("note-text").value.trim();
  if (!caseId || !text) return;
  const updated = await attempt("Could not add the note", () =>
    api(`/cases/${encodeURIComponent(caseId)}/notes`, { method: "POST", body: { text } }),
  );
  if (!updated) return;
  byId("note-text").value = "";
  renderCase(updated);
}

async function loadWorkflow() {
  state.workflow = await attempt("Could not load the case workflow", () => api("/app/workflow.json"));
  if (!state.workflow) return false;
  const stateSelect = byId("filter-state");
  stateSelect.append(...state.workflow.states.map((s) => el("option", { value: s }, words(s))));
  byId("filter-rule").append(...state.workflow.rules.map((r) => el("option", { value: r }, words(r))));
  return true;
}

const me = await startPage("loss_prevention", ["loss_prevention", "admin"]);
if (me && (await loadWorkflow())) {
  // The amounts' currency, if this account may read the catalog; EUR otherwise.
  api("/catalog").then((c) => setCurrency(c.currency), () => {});
  for (const id of ["filter-state", "filter-rule", "sort-key", "sort-descending"]) {
    byId(id).addEventListener("change", () => {
      clearError();
      loadQueue();
    });
  }
  byId("queue-form").addEventListener("submit", (e) => e.preventDefault());
  byId("note-form").addEventListener("submit", addNote);
  await Promise.all([loadQueue(), loadCounts()]);
  const refresh = debounce(() => Promise.all([loadQueue(), loadCounts()]), 500);
  listen({
    case: (data) => {
      refresh();
      if (data.case_id && data.case_id === state.openCaseId) openCase(data.case_id);
    },
    resync: () => {
      refresh();
      if (state.openCaseId) openCase(state.openCaseId);
    },
  });
  document.body.dataset.ready = "true";
}
