// Shared by every page: calling the API with errors in words, building DOM safely,
// formatting money and times, the page header, and the live event stream.
// Data from the API only ever reaches the page as text (textContent), never as markup.

/** An API call that failed: the HTTP status and what the server said, in words. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function describe(status, body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI's 422: [{loc: ["body", "field"], msg: "..."}]
    return detail
      .map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".") || "request"}: ${d.msg}`)
      .join("; ");
  }
  if (detail && typeof detail.message === "string") return detail.message;
  if (status === 401) return "you are not signed in (or your sign-in expired): sign in again";
  if (status === 403) return "your account may not do this";
  if (status === 404) return "not found";
  if (status >= 500) return "the store's server had a problem; try again in a moment";
  return `the server answered ${status}`;
}

/** Call the API (cookie credentials); JSON in and out. Throws ApiError. */
export async function api(path, { method = "GET", body } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "the store's server cannot be reached; check the connection");
  }
  if (res.status === 204) return null;
  let data = null;
  const type = res.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  if (!res.ok) throw new ApiError(res.status, describe(res.status, data));
  return data;
}

/** Fetch a binary resource (an image) as an object URL; errors as ApiError. */
export async function blobUrl(path) {
  const res = await fetch(path, { credentials: "same-origin" });
  if (!res.ok) {
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    throw new ApiError(res.status, describe(res.status, data));
  }
  return URL.createObjectURL(await res.blob());
}

/** el("td", {class: "num", "data-testid": "x"}, "text", child...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "onclick" || key === "onsubmit" || key === "onchange") {
      node.addEventListener(key.slice(2), value);
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`the page has no element #${id}`);
  return node;
}

/** Replace a container's children. */
export function fill(container, ...children) {
  container.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
}

let currency = "EUR";
export function setCurrency(code) {
  if (code) currency = code;
}

export function money(cents, code = currency) {
  if (cents === null || cents === undefined) return "–";
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: code }).format(
      cents / 100,
    );
  } catch {
    return `${(cents / 100).toFixed(2)} ${code}`;
  }
}

/** An event time (Unix s) as a time of day; with the date when `withDate`. */
export function clock(seconds, withDate = false) {
  if (seconds === null || seconds === undefined) return "–";
  const d = new Date(seconds * 1000);
  const time = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return withDate ? `${d.toLocaleDateString()} ${time}` : time;
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function percent(x) {
  return x === null || x === undefined ? "–" : `${Math.round(x * 100)}\u00a0%`;
}

/** Event time (Unix s) <-> the value of an <input type="datetime-local" step="1">. */
export function toLocalInput(seconds) {
  const d = new Date(Math.round(seconds) * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  );
}

export function fromLocalInput(value) {
  if (!value) return null;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? null : ms / 1000;
}

/** Call `fn` once, `ms` after the last of a burst of calls. */
export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// --- messages to the user ---

export function showError(what, err) {
  const box = byId("error");
  const why = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  box.textContent = `${what}: ${why}.`;
  box.hidden = false;
  if (err instanceof ApiError && err.status === 401) {
    box.append(" ", el("a", { href: "/" }, "Sign in"));
  }
}

export function clearError() {
  const box = byId("error");
  box.hidden = true;
  box.textContent = "";
}

/** Run an async step; a failure shows `what` failed and why. Returns the result or null. */
export async function attempt(what, step) {
  try {
    return await step();
  } catch (err) {
    showError(what, err);
    return null;
  }
}

// --- the page frame ---

export const FACES = {
  shopper: { href: "/app/shopper.html", label: "Shopper" },
  manager: { href: "/app/manager.html", label: "Manager" },
  loss_prevention: { href: "/app/loss-prevention.html", label: "Loss prevention" },
};

/** The face a role starts on. */
export function faceOf(role) {
  if (role === "admin") return FACES.manager.href;
  return FACES[role] ? FACES[role].href : null;
}

/**
 * Check who is signed in and that they may use this face; fill the header.
 * Sends the visitor to the sign-in page when not signed in.
 */
export async function startPage(face, allowedRoles) {
  let me;
  try {
    me = await api("/me");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      window.location.replace("/?next=" + encodeURIComponent(window.location.pathname));
      return null;
    }
    showError("Could not find out who is signed in", err);
    return null;
  }
  byId("who").textContent = `${me.display_name} (${me.role.replace("_", " ")})`;
  const nav = byId("faces");
  const mine = me.role === "admin" ? ["manager", "loss_prevention"] : [me.role];
  fill(
    nav,
    mine
      .filter((f) => FACES[f])
      .map((f) =>
        el(
          "a",
          { href: FACES[f].href, "aria-current": f === face ? "page" : null },
          FACES[f].label,
        ),
      ),
  );
  byId("sign-out").addEventListener("click", async () => {
    await attempt("Could not sign out", () => api("/auth/logout", { method: "POST" }));
    window.location.assign("/");
  });
  if (!allowedRoles.includes(me.role)) {
    const home = faceOf(me.role);
    showError(
      "This page is not for your account",
      new Error(home ? "your page is linked above" : "this account has no page here"),
    );
    byId("main").hidden = true;
    return null;
  }
  return me;
}

/**
 * Listen to the server's live events; `handlers` maps event names to functions of the
 * event's data. A "resync" (events were dropped) calls `handlers.resync` or every handler.
 */
export function listen(handlers) {
  const state = byId("live-state");
  const source = new EventSource("/events");
  const set = (text, cls) => {
    state.textContent = text;
    state.dataset.state = cls;
  };
  set("connecting…", "connecting");
  source.addEventListener("hello", () => set("live", "live"));
  source.addEventListener("resync", () => {
    if (handlers.resync) handlers.resync();
    else for (const [name, h] of Object.entries(handlers)) if (name !== "resync") h({});
  });
  for (const [name, handler] of Object.entries(handlers)) {
    if (name === "resync") continue;
    source.addEventListener(name, (e) => {
      let data = {};
      try {
        data = JSON.parse(e.data);
      } catch {
        data = {};
      }
      handler(data);
    });
  }
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) set("live updates off: reload the page", "off");
    else set("reconnecting…", "connecting");
  };
  return source;
}
