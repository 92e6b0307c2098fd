// Small helpers shared by the Inspector views: DOM building (text only, never HTML),
// the API client, a Server-Sent Events reader over fetch, dialogs, toasts and formatting.

const TOKEN_KEY = "agentbox.inspector.token";
const IDENTITY_KEY = "agentbox.inspector.identity";

export const auth = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  get identity() {
    try { return JSON.parse(sessionStorage.getItem(IDENTITY_KEY) || "null"); } catch { return null; }
  },
  set identity(value) {
    if (value) sessionStorage.setItem(IDENTITY_KEY, JSON.stringify(value));
    else sessionStorage.removeItem(IDENTITY_KEY);
  },
  clear() { this.token = null; this.identity = null; },
};

// Called when the server answers 401; set by app.js.
let unauthorizedHandler = () => {};
export function onUnauthorized(fn) { unauthorizedHandler = fn; }

// ---------- DOM ----------

/** h("div", {class: "x", onclick: fn}, "text", child, [more]) — strings become text nodes. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
      else if (key === "class") el.className = value;
      else if (key === "dataset") Object.assign(el.dataset, value);
      else if (key === "value" || key === "checked" || key === "selected" || key === "disabled" || key === "textContent") el[key] = value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  appendChildren(el, children);
  return el;
}

function appendChildren(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) appendChildren(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  appendChildren(el, children);
  return el;
}

export function loading(text = "Loading…") {
  return h("div", { class: "loading", role: "status" }, h("span", { class: "spinner" }), text);
}

export function errorText(err) {
  if (err instanceof ApiError) return err.message;
  if (err && err.name === "TypeError" && /fetch|network/i.test(err.message)) return `Could not reach the server: ${err.message}`;
  return (err && err.message) || String(err);
}

export function alertBox(kind, text, { dismissible = false } = {}) {
  const box = h("div", { class: `alert ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", { class: "alert-text" }, text));
  if (dismissible) box.appendChild(h("button", { class: "close", type: "button", "aria-label": "Dismiss", onclick: () => box.remove() }, "×"));
  return box;
}

export function errorBox(err) { return alertBox("error", errorText(err), { dismissible: true }); }

/** A placeholder element that shows errors and notices for one panel. */
export function messageArea() {
  const el = h("div", { class: "messages" });
  el.error = (err) => { clear(el, errorBox(err)); };
  el.info = (text, kind = "info") => { clear(el, alertBox(kind, text, { dismissible: true })); };
  el.reset = () => clear(el);
  return el;
}

// ---------- API ----------

export class ApiError extends Error {
  constructor(status, problem) {
    const detail = problem && (problem.detail || problem.title);
    super(detail ? `${detail} (HTTP ${status})` : `The server answered HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.detail = detail || "";
  }
}

async function problemOf(res) {
  const text = await res.text().catch(() => "");
  try { return JSON.parse(text); } catch { return { detail: text.trim().slice(0, 300) || res.statusText }; }
}

/**
 * api("GET", "/v1/workspaces") → parsed JSON (or null for 204).
 * Options: json (request body as JSON), body (raw), raw (return the Response), auth=false, query.
 */
export async function api(method, path, opts = {}) {
  const headers = { ...(opts.headers || {}) };
  const token = auth.token;
  if (opts.auth !== false && token) headers["Authorization"] = `Bearer ${token}`;
  let body = opts.body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  }
  let url = path;
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) if (v !== undefined && v !== null) q.set(k, String(v));
    const s = q.toString();
    if (s) url += (url.includes("?") ? "&" : "?") + s;
  }
  const res = await fetch(url, { method, headers, body, signal: opts.signal });
  if (!res.ok) {
    const problem = await problemOf(res);
    const err = new ApiError(res.status, problem);
    if (res.status === 401 && opts.auth !== false) unauthorizedHandler(err);
    throw err;
  }
  if (opts.raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get("Content-Type") || "";
  if (type.includes("json")) return res.json();
  return res.text();
}

export const ws = (key) => `/v1/workspaces/${encodeURIComponent(key)}`;

// ---------- Server-Sent Events over fetch (so the bearer header is sent) ----------

/**
 * Reads an SSE route. onEvent({id, event, data}) gets each event (data parsed as JSON when it is JSON);
 * returning "stop" from it closes the stream. Reconnects with Last-Event-ID unless retry is false.
 * Returns {close()}.
 */
export function sse(path, { onEvent, onOpen, onError, onEnd, lastEventId = null, retry = true }) {
  const controller = new AbortController();
  let closed = false;
  let lastId = lastEventId;

  async function readOnce() {
    const headers = { Accept: "text/event-stream" };
    if (auth.token) headers["Authorization"] = `Bearer ${auth.token}`;
    if (lastId !== null && lastId !== undefined) headers["Last-Event-ID"] = String(lastId);
    const res = await fetch(path, { headers, signal: controller.signal });
    if (!res.ok) {
      const err = new ApiError(res.status, await problemOf(res));
      if (res.status === 401) unauthorizedHandler(err);
      throw err;
    }
    onOpen && onOpen();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let event = { id: null, event: "message", data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        let line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          if (event.data.length) {
            const raw = event.data.join("\n");
            let data = raw;
            try { data = JSON.parse(raw); } catch { /* keep text */ }
            if (event.id !== null) lastId = event.id;
            const verdict = onEvent({ id: event.id, event: event.event, data });
            if (verdict === "stop" || closed) { close(); return; }
          }
          event = { id: null, event: "message", data: [] };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "data") event.data.push(val);
        else if (field === "event") event.event = val;
        else if (field === "id") event.id = val;
      }
    }
  }

  (async () => {
    while (!closed) {
      try {
        await readOnce();
        if (closed) return;
        if (!retry) { onEnd && onEnd(); return; }
      } catch (err) {
        if (closed || err.name === "AbortError") return;
        onError && onError(err);
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) return;
        if (!retry) return;
      }
      await new Promise((r) => setTimeout(r, 1500));
    }
  })();

  function close() { if (!closed) { closed = true; controller.abort(); } }
  return { close };
}

// ---------- dialogs and toasts ----------

/** Opens a modal form; resolves to {field: value} or null when cancelled. */
export function askDialog({ title, message, fields = [], okLabel = "OK", danger = false }) {
  return new Promise((resolve) => {
    const inputs = {};
    const dialog = h("dialog", { "aria-label": title });
    const form = h("form", { method: "dialog" },
      h("h2", null, title),
      message ? h("p", { class: "muted" }, message) : null,
      fields.map((f) => {
        const input = h("input", {
          name: f.name, type: f.type || "text", value: f.value || "", placeholder: f.placeholder || "",
          required: f.required !== false, autocomplete: "off", spellcheck: "false",
        });
        inputs[f.name] = input;
        return h("label", { class: "field" }, f.label, input);
      }),
      h("div", { class: "dialog-actions" },
        h("button", { type: "button", onclick: () => dialog.close("cancel") }, "Cancel"),
        h("button", { type: "submit", value: "ok", class: danger ? "primary danger-fill" : "primary" }, okLabel)));
    dialog.appendChild(form);
    dialog.addEventListener("close", () => {
      const ok = dialog.returnValue === "ok";
      const values = {};
      for (const [k, input] of Object.entries(inputs)) values[k] = input.value.trim();
      dialog.remove();
      resolve(ok ? values : null);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    const first = Object.values(inputs)[0];
    if (first) first.focus();
  });
}

export async function confirmDialog(title, message, okLabel = "Delete") {
  return (await askDialog({ title, message, okLabel, danger: true })) !== null;
}

let toastHost = null;
export function toast(text, kind = "info") {
  if (!toastHost) { toastHost = h("div", { class: "toast-host", "aria-live": "polite" }); document.body.appendChild(toastHost); }
  const el = h("div", { class: `toast ${kind}`, role: "status" }, text);
  toastHost.appendChild(el);
  while (toastHost.children.length > 3) toastHost.firstChild.remove();
  setTimeout(() => el.remove(), kind === "error" ? 7000 : 2500);
}

// ---------- formatting ----------

export function fmtBytes(n) {
  if (n === undefined || n === null || isNaN(n)) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0; let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function fmtNumber(n) {
  if (n === undefined || n === null) return "—";
  return Number(n).toLocaleString("en-US");
}

export function fmtMs(ms) {
  if (ms === undefined || ms === null) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60000); const s = Math.round((ms % 60000) / 1000);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  const diff = (Date.now() - d.getTime()) / 1000;
  const abs = Math.abs(diff);
  let rel;
  if (abs < 45) rel = diff >= 0 ? "just now" : "in a few seconds";
  else if (abs < 3600) rel = `${Math.round(abs / 60)} min`;
  else if (abs < 86400) rel = `${Math.round(abs / 3600)} h`;
  else rel = `${Math.round(abs / 86400)} d`;
  if (abs >= 45) rel = diff >= 0 ? `${rel} ago` : `in ${rel}`;
  return rel;
}

export function timeEl(iso) {
  return h("time", { datetime: iso || "", title: iso ? new Date(iso).toLocaleString() : "" }, fmtTime(iso));
}

export function badge(text, cls) {
  // Without a class the text names one, when it is a plain word (a raw value from the API may be anything).
  const fallback = String(text).toLowerCase();
  return h("span", { class: `badge ${cls ?? (/^[a-z0-9_-]+$/.test(fallback) ? fallback : "")}`.trim() }, text);
}

// Every state and status the API sends (AgentBoxAPI: WorkspaceState, SessionStatus, WorkspaceProcess.Status,
// ShellStatus, CronRunStatus) and ACP's tool call and plan entry statuses: a label, a tone (its colour) and what it
// means. A value not listed here (a newer server's) shows as it is, in a neutral badge.
const STATES = {
  workspace: {
    sleeping: ["sleeping", "muted", "No process runs; the next action wakes it"],
    booting: ["booting", "warn", "Being prepared to run"],
    running: ["running", "ok", "Awake: actions run at once"],
  },
  session: {
    idle: ["idle", "ok", "No turn runs; a prompt starts one"],
    running: ["running", "busy", "A turn runs"],
    closed: ["closed", "muted", "The agent is stopped, the transcript kept; Resume opens it again"],
  },
  process: {
    running: ["running", "ok", "The process runs"],
    exited: ["exited", "muted", "The process has ended"],
  },
  shell: {
    running: ["running", "ok", "The shell runs"],
    exited: ["exited", "muted", "The shell has ended"],
  },
  cron: {
    queued: ["queued", "warn", "Waiting for the job's previous run"],
    running: ["running", "busy", "Running now"],
    ok: ["ok", "ok", "The command exited 0, or the agent's turn ended without an error"],
    error: ["error", "danger", "The command failed or timed out, the turn failed, or the run could not start"],
    skipped: ["skipped", "muted", "Not run: the previous run was still running"],
  },
  tool: {
    pending: ["pending", "warn", "Not started yet"],
    in_progress: ["in progress", "busy", "Running"],
    completed: ["completed", "ok", "Done"],
    failed: ["failed", "danger", "Failed"],
  },
  plan: {
    pending: ["pending", "muted", "Not started yet"],
    in_progress: ["in progress", "busy", "Being worked on"],
    completed: ["completed", "ok", "Done"],
  },
};

/** What the Inspector knows of a state: {label, tone, title, known}; an unknown value keeps its raw text. */
export function stateInfo(kind, value) {
  const known = STATES[kind] && Object.prototype.hasOwnProperty.call(STATES[kind], value) ? STATES[kind][value] : null;
  if (known) return { label: known[0], tone: known[1], title: known[2], known: true };
  const raw = value === undefined || value === null || value === "" ? "—" : typeof value === "string" ? value : JSON.stringify(value);
  return { label: raw, tone: "neutral", title: value === undefined || value === null ? "No state given" : `"${raw}": a state this Inspector does not know`, known: false };
}

/** A badge for a state or status of `kind` (workspace, session, process, shell, cron, tool, plan). */
export function stateBadge(kind, value) {
  const info = stateInfo(kind, value);
  return h("span", {
    class: `badge state tone-${info.tone}`, title: info.title,
    dataset: { kind, state: value === undefined || value === null ? "" : String(value), known: String(info.known) },
  }, info.label);
}

/** At phone width the detail panel sits below the list: bring it into view. */
export function revealOnPhone(el) {
  if (window.matchMedia("(max-width: 800px)").matches) requestAnimationFrame(() => el.scrollIntoView({ block: "start" }));
}

export function joinPath(dir, name) {
  if (name.startsWith("/")) return name;
  return (dir.endsWith("/") ? dir : dir + "/") + name;
}

export function parentPath(path) {
  const trimmed = path.replace(/\/+$/, "");
  const i = trimmed.lastIndexOf("/");
  return i <= 0 ? "/" : trimmed.slice(0, i);
}

export function baseName(path) {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1) || "/";
}

/** Splits a command line on spaces, honouring simple '…' and "…" quotes. */
export function splitArgs(line) {
  const out = []; let cur = ""; let quote = null; let has = false;
  for (const ch of line) {
    if (quote) { if (ch === quote) quote = null; else cur += ch; }
    else if (ch === "'" || ch === '"') { quote = ch; has = true; }
    else if (/\s/.test(ch)) { if (cur || has) out.push(cur); cur = ""; has = false; }
    else cur += ch;
  }
  if (cur || has) out.push(cur);
  return out;
}

export function decodeData(payload) {
  if (payload && payload.encoding === "base64") {
    const bin = atob(payload.data || "");
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    return new TextDecoder().decode(bytes);
  }
  return (payload && payload.data) || "";
}
