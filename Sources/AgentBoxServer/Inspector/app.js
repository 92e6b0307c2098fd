// AgentBox Inspector — a single-page app over the AgentBox HTTP API (/v1/...).
// Routing is by location.hash: #/workspaces, #/tokens, #/w/KEY/TAB[/ID][?query], #/login.
// Every server-provided string goes into the DOM as text (see h() in lib.js).

import {
  auth, onUnauthorized, h, clear, loading, errorText, alertBox, errorBox, messageArea, api, ApiError, ws, sse,
  askDialog, confirmDialog, toast, fmtBytes, fmtNumber, fmtMs, fmtTime, timeEl, badge, stateBadge, stateInfo,
  joinPath, parentPath, baseName, splitArgs, decodeData, revealOnPhone,
} from "./lib.js";
import { renderSessions } from "./sessions.js";
import { renderDesktop } from "./desktop.js";

const app = document.getElementById("app");

// ---------- route lifecycle ----------

let disposers = [];
let routeGeneration = 0;
let loginMessage = null;
let sidebarList = null;
let shellEl = null;

/** Registers a cleanup for the current route (closing streams, sockets, timers). */
export function onLeave(fn) { disposers.push(fn); }
function runDisposers() {
  const list = disposers; disposers = [];
  for (const fn of list) { try { fn(); } catch (e) { console.warn("cleanup failed", e); } }
}
/** True while the route that called it is still the one shown. */
export function stillHere(gen) { return gen === routeGeneration; }
export function currentGeneration() { return routeGeneration; }

export function go(hash) {
  if (location.hash === hash) render(); else location.hash = hash;
}

function parseRoute() {
  const raw = location.hash.replace(/^#/, "");
  const [pathPart, queryPart] = raw.split("?");
  const parts = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(queryPart || "");
  return { parts, query };
}

onUnauthorized((err) => {
  if (!auth.token) return;
  auth.clear();
  loginMessage = { kind: "error", text: `Your token was refused (${err.detail || "401 Unauthorized"}). Log in again.` };
  go("#/login");
});

window.addEventListener("hashchange", () => { if (/^#login=/.test(location.hash)) start(); else render(); });
window.addEventListener("unhandledrejection", (ev) => {
  const err = ev.reason;
  if (err instanceof ApiError && err.status === 401) { ev.preventDefault(); return; }
  console.error(err);
});

// ---------- start ----------

async function start() {
  const m = location.hash.match(/^#login=(.+)$/);
  if (m) {
    runDisposers();
    routeGeneration++;
    shellEl = null;
    const code = decodeURIComponent(m[1]);
    history.replaceState(null, "", location.pathname + location.search);
    clear(app, h("div", { class: "login-page" }, h("div", { class: "login-card" }, loading("Signing in with the login link…"))));
    try {
      const res = await api("POST", "/v1/login", { json: { code }, auth: false });
      auth.token = res.token;
      auth.identity = { id: res.id, role: res.role, label: res.label, workspaces: res.workspaces, expiresAt: res.expiresAt };
      history.replaceState(null, "", location.pathname + location.search + "#/workspaces");
    } catch (err) {
      auth.clear();
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
        loginMessage = { kind: "error", text: "This login link has expired or was used; log in with a token." };
      } else {
        loginMessage = { kind: "error", text: `The login link could not be used: ${errorText(err)}` };
      }
      history.replaceState(null, "", location.pathname + location.search + "#/login");
    }
  }
  render();
}

function render() {
  runDisposers();
  routeGeneration++;
  const { parts, query } = parseRoute();
  if (!auth.token || parts[0] === "login") {
    if (auth.token && parts[0] === "login") { location.hash = "#/workspaces"; return; }
    shellEl = null;
    document.title = "Sign in · AgentBox Inspector";
    renderLogin();
    return;
  }
  const main = ensureShell();
  closeNav();
  const tabName = (TABS.find(([id]) => id === (parts[2] || "files")) || [null, "Files"])[1];
  document.title = parts[0] === "w" && parts[1] ? `${tabName} · ${parts[1]} · AgentBox` : parts[0] === "tokens" ? "Tokens · AgentBox" : "Workspaces · AgentBox";
  refreshSidebar(parts);
  main.scrollTop = 0;
  if (parts[0] === "w" && parts[1]) renderWorkspace(main, parts[1], parts[2] || "files", parts.slice(3), query);
  else if (parts[0] === "tokens") renderTokens(main);
  else renderWorkspaces(main);
}

// ---------- login ----------

function renderLogin() {
  const msg = loginMessage; loginMessage = null;
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", placeholder: "Paste your API token", required: true });
  const messages = messageArea();
  if (msg) messages.info(msg.text, msg.kind);
  const button = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      button.disabled = true; button.textContent = "Checking…";
      try {
        const res = await fetch("/v1/workspaces", { headers: { Authorization: `Bearer ${token}` } });
        if (res.status === 401) {
          let detail = ""; try { detail = (await res.json()).detail || ""; } catch { /* ignore */ }
          throw new Error(`The server refused this token${detail ? `: ${detail}` : ""} (HTTP 401).`);
        }
        auth.token = token;
        auth.identity = null;
        location.hash = "#/workspaces";
        render();
      } catch (err) {
        messages.error(err);
      } finally {
        button.disabled = false; button.textContent = "Log in";
      }
    },
  },
  h("label", { class: "field", for: "token" }, "API token", input),
  button);
  clear(app, h("main", { class: "login-page" }, h("div", { class: "login-card" },
    brand(),
    h("h1", null, "Sign in"),
    h("p", null, "Paste an AgentBox API token (the server's --token, or one made on the Tokens page). It is kept in this tab only. A login link (from ", h("code", null, "agentbox ui"), " or the Tokens page) signs you in without one."),
    messages,
    form)));
  input.focus();
}

function brand() {
  return h("a", { class: "brand", href: "#/workspaces" }, h("span", { class: "logo", "aria-hidden": "true" }), "AgentBox", h("small", null, "Inspector"));
}

// ---------- app shell ----------

function closeNav() { if (shellEl) shellEl.classList.remove("nav-open"); }

function ensureShell() {
  if (shellEl && app.contains(shellEl)) return shellEl.querySelector(".main");
  const identity = auth.identity;
  sidebarList = h("nav", { "aria-label": "Workspaces" });
  shellEl = h("div", { class: "shell" },
    h("header", { class: "topbar" },
      h("button", { class: "menu-toggle", type: "button", "aria-label": "Menu", onclick: () => shellEl.classList.toggle("nav-open") }, "☰"),
      brand(),
      h("span", { class: "spacer" }),
      identity ? h("span", { class: "whoami" }, `${identity.label || identity.id || "token"} · ${identity.role || ""}`) : null,
      h("button", { type: "button", onclick: logout }, "Log out")),
    h("aside", { class: "sidebar" },
      h("div", { class: "section" }, "Inspector"),
      h("nav", { "aria-label": "Main" },
        h("a", { href: "#/workspaces", dataset: { nav: "workspaces" } }, h("span", { class: "icon" }, "▤"), "Workspaces"),
        h("a", { href: "#/tokens", dataset: { nav: "tokens" } }, h("span", { class: "icon" }, "✱"), "Tokens")),
      h("div", { class: "section" }, "Workspaces"),
      sidebarList),
    h("div", { class: "scrim", onclick: closeNav }),
    h("main", { class: "main", id: "main" }));
  clear(app, shellEl);
  return shellEl.querySelector(".main");
}

function logout() {
  auth.clear();
  loginMessage = { kind: "info", text: "You are logged out." };
  go("#/login");
}

let sidebarCache = [];
async function refreshSidebar(parts) {
  for (const a of shellEl.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", a.dataset.nav === (parts[0] === "tokens" ? "tokens" : parts[0] === "w" ? "" : "workspaces"));
  }
  const current = parts[0] === "w" ? parts[1] : null;
  const draw = () => {
    clear(sidebarList, sidebarCache.length === 0 ? h("div", { class: "empty" }, "No workspaces yet") :
      sidebarCache.map((w) => h("a", { href: `#/w/${encodeURIComponent(w.key)}/files`, class: w.key === current ? "active" : "", title: w.key },
        h("span", { class: `dot ${stateInfo("workspace", w.state).known ? w.state : "unknown"}`, title: stateInfo("workspace", w.state).label }), w.key)));
  };
  draw();
  try {
    const res = await api("GET", "/v1/workspaces");
    sidebarCache = res.items || [];
    draw();
  } catch { /* the page itself shows errors */ }
}

// ---------- workspaces ----------

async function renderWorkspaces(main) {
  const gen = routeGeneration;
  const messages = messageArea();
  const listHost = h("div", null, loading("Loading workspaces…"));
  const keyInput = h("input", { name: "key", placeholder: "new-workspace-key", "aria-label": "Workspace key", required: true, title: "1–128 characters of A–Z a–z 0–9 . _ - :", class: "grow", autocomplete: "off", spellcheck: "false" });
  const createBtn = h("button", { type: "submit", class: "primary" }, "Create workspace");
  const num = (label, placeholder) => h("input", { type: "number", min: 1, "aria-label": label, placeholder, style: "width: 8rem" });
  const limitInputs = { memoryMb: num("Memory (MB)", "2048"), cpuPercent: num("CPU (%)", "100"), pids: num("Processes", "512"), diskMb: num("Disk (MB)", "10240") };
  const egress = h("select", { "aria-label": "Outbound network" }, h("option", { value: "" }, "server default"), h("option", { value: "deny" }, "deny"), h("option", { value: "allow" }, "allow"));

  const load = async () => {
    try {
      const res = await api("GET", "/v1/workspaces");
      if (!stillHere(gen)) return;
      const items = res.items || [];
      sidebarCache = items;
      if (items.length === 0) { clear(listHost, h("div", { class: "empty-state" }, "No workspaces yet. Create one above.")); return; }
      clear(listHost, h("div", { class: "table-wrap" }, h("table", null,
        h("thead", null, h("tr", null, h("th", null, "Key"), h("th", null, "State"), h("th", { class: "hide-phone" }, "Created"), h("th", { class: "hide-phone" }, "Last active"), h("th", { class: "hide-phone" }, "Limits"), h("th", null, ""))),
        h("tbody", null, items.map((w) => h("tr", { dataset: { key: w.key } },
          h("td", null, h("a", { href: `#/w/${encodeURIComponent(w.key)}/files`, class: "break" }, w.key)),
          h("td", null, stateBadge("workspace", w.state)),
          h("td", { class: "hide-phone" }, timeEl(w.createdAt)),
          h("td", { class: "hide-phone" }, timeEl(w.lastActiveAt)),
          h("td", { class: "hide-phone small muted" }, w.limits ? `${w.limits.memoryMb ?? "?"} MB · ${w.limits.cpuPercent ?? "?"}% CPU · ${w.limits.diskMb ?? "?"} MB disk` : "—",
            w.network ? ` · egress ${typeof w.network.egress === "string" ? w.network.egress : "allow-list"}` : ""),
          h("td", { class: "actions" },
            h("a", { class: "button small hide-phone", href: `#/w/${encodeURIComponent(w.key)}/files` }, "Open"),
            w.state !== "sleeping" ? h("button", { class: "small", type: "button", onclick: () => sleepWorkspace(w.key, messages, load) }, "Sleep") : null,
            h("button", { class: "small danger", type: "button", onclick: () => deleteWorkspace(w.key, messages, load) }, "Delete"))))))));
    } catch (err) {
      if (!stillHere(gen)) return;
      clear(listHost, errorBox(err));
    }
  };

  const form = h("form", {
    class: "inline",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const key = keyInput.value.trim();
      if (!key) return;
      createBtn.disabled = true;
      messages.reset();
      try {
        const body = {};
        const limits = {};
        for (const [name, input] of Object.entries(limitInputs)) if (input.value) limits[name] = Number(input.value);
        if (Object.keys(limits).length) body.limits = limits;
        if (egress.value) body.network = { egress: egress.value };
        const res = await api("PUT", `${ws(key)}`, { json: body, raw: true });
        const existed = res.status === 200;
        toast(existed ? `Workspace ${key} already existed` : `Workspace ${key} created`);
        go(`#/w/${encodeURIComponent(key)}/files`);
      } catch (err) {
        messages.error(err);
      } finally {
        createBtn.disabled = false;
      }
    },
  }, keyInput, createBtn,
  h("details", { class: "options" }, h("summary", null, "Limits and network"),
    h("div", { class: "row" },
      h("label", { class: "field" }, "Memory (MB)", limitInputs.memoryMb),
      h("label", { class: "field" }, "CPU (%)", limitInputs.cpuPercent),
      h("label", { class: "field" }, "Processes", limitInputs.pids),
      h("label", { class: "field" }, "Disk (MB)", limitInputs.diskMb),
      h("label", { class: "field" }, "Outbound network", egress))));

  clear(main,
    h("div", { class: "page-head" }, h("h1", null, "Workspaces"), h("span", { class: "spacer" }), h("button", { type: "button", onclick: () => { clear(listHost, loading()); load(); } }, "Refresh")),
    messages,
    h("section", { class: "panel" }, h("h2", null, "New workspace"), form),
    h("section", { class: "panel flush" }, listHost));
  load();
}

async function sleepWorkspace(key, messages, after) {
  try { await api("POST", `${ws(key)}/sleep`); toast(`${key} is asleep`); after && after(); }
  catch (err) { messages.error(err); }
}

async function deleteWorkspace(key, messages, after) {
  if (!await confirmDialog(`Delete workspace ${key}?`, "This destroys its processes, files, sessions, tokens and cron jobs. It cannot be undone.")) return;
  try {
    await api("DELETE", ws(key));
    toast(`Workspace ${key} deleted`);
    sidebarCache = sidebarCache.filter((w) => w.key !== key);
    after && after();
  } catch (err) { messages.error(err); }
}

// ---------- one workspace ----------

const TABS = [
  ["files", "Files"], ["processes", "Processes"], ["terminal", "Terminal"], ["desktop", "Desktop"], ["sessions", "Sessions"],
  ["previews", "Previews"], ["cron", "Cron"], ["events", "Events"], ["usage", "Usage & metrics"],
];

async function renderWorkspace(main, key, tab, rest, query) {
  const gen = routeGeneration;
  const stateHost = h("span", null, h("span", { class: "badge state tone-muted", title: "Loading the workspace's state" }, "…"));
  const messages = messageArea();
  const content = h("div", { class: "tab-content" });
  const base = `#/w/${encodeURIComponent(key)}`;
  // Shown only while the workspace is awake (or its state is not known yet).
  const sleepButton = h("button", { type: "button", onclick: async () => { await sleepWorkspace(key, messages); refreshState(); } }, "Sleep");
  const showState = (state) => {
    clear(stateHost, stateBadge("workspace", state));
    sleepButton.hidden = state === "sleeping";
  };
  clear(main,
    h("div", { class: "page-head" },
      h("h1", null, key), stateHost, h("span", { class: "spacer" }),
      sleepButton,
      h("button", { type: "button", class: "danger", onclick: () => deleteWorkspace(key, messages, () => go("#/workspaces")) }, "Delete")),
    h("nav", { class: "tabs", "aria-label": "Workspace sections" },
      TABS.map(([id, label]) => h("a", { href: `${base}/${id}`, class: id === tab ? "active" : "", "aria-current": id === tab ? "page" : null }, label))),
    messages,
    content);
  const activeTab = main.querySelector(".tabs a.active");
  if (activeTab) activeTab.scrollIntoView({ block: "nearest", inline: "center" });

  async function refreshState() {
    try {
      const w = await api("GET", ws(key));
      if (stillHere(gen)) showState(w.state);
    } catch (err) {
      if (!stillHere(gen)) return;
      clear(stateHost, h("span", { class: "badge state tone-danger", title: errorText(err) }, "state unavailable"));
      if (err instanceof ApiError && err.status === 404) { clear(content); messages.error(err); }
    }
  }
  refreshState();
  const soon = setTimeout(refreshState, 1500); // the tab's first call may have woken it
  const timer = setInterval(refreshState, 10000);
  onLeave(() => clearTimeout(soon));
  onLeave(() => clearInterval(timer));

  // Live workspace events: the state badge follows boots and shutdowns; the Events tab lists them all.
  const listeners = new Set();
  const openListeners = new Set();
  let streamOpen = false;
  const events = sse(`${ws(key)}/events`, {
    onOpen: () => { streamOpen = true; for (const fn of openListeners) fn(true); },
    onError: () => { streamOpen = false; for (const fn of openListeners) fn(false); },
    onEvent: (ev) => {
      if (ev.event === "vmBooted") showState("running");
      else if (ev.event === "vmShutdown") showState("sleeping");
      for (const fn of listeners) fn(ev);
    },
  });
  onLeave(() => events.close());

  const ctx = {
    key, base, gen, query, rest, content, messages,
    onEvent: (fn) => listeners.add(fn),
    onStream: (fn) => { openListeners.add(fn); fn(streamOpen); },
  };
  const views = { files: renderFiles, processes: renderProcesses, terminal: renderTerminal, desktop: renderDesktop, sessions: renderSessions, previews: renderPreviews, cron: renderCron, events: renderEvents, usage: renderUsage };
  (views[tab] || renderFiles)(ctx);
}

// ---------- Files ----------

function renderFiles(ctx) {
  const { key, base, gen, query, content } = ctx;
  const dir = query.get("path") || "/workspace";
  const file = query.get("file");
  const isNew = query.get("new") === "1";
  const messages = messageArea();
  const listHost = h("div", null, loading("Listing files…"));
  const link = (path, f) => {
    const q = new URLSearchParams({ path }); if (f) q.set("file", f);
    return `${base}/files?${q}`;
  };

  // The file routes serve /workspace and /home/agent; breadcrumbs start at the root the path is under.
  const ROOTS = ["/workspace", "/home/agent"];
  const root = ROOTS.find((r) => dir === r || dir.startsWith(r + "/")) || "";
  const crumbs = h("div", { class: "crumbs", "aria-label": "Current directory" });
  const rootSelect = h("select", { class: "small", "aria-label": "Root folder", onchange: () => go(link(rootSelect.value)) },
    ROOTS.map((r) => h("option", { value: r, selected: r === root }, r)), root ? null : h("option", { value: dir, selected: true }, dir));
  crumbs.appendChild(rootSelect);
  const segs = dir.slice(root.length).split("/").filter(Boolean);
  segs.forEach((s, i) => {
    const p = root + "/" + segs.slice(0, i + 1).join("/");
    crumbs.appendChild(h("span", { class: "sep" }, "/"));
    crumbs.appendChild(h("a", { href: link(p) }, s));
  });

  const upload = h("input", { type: "file", multiple: true, hidden: true, "aria-label": "Upload files", onchange: async () => {
    const files = [...upload.files];
    upload.value = "";
    for (const f of files) {
      try {
        const res = await api("PUT", `${ws(key)}/fs/file`, { query: { path: joinPath(dir, f.name) }, body: f, headers: { "Content-Type": "application/octet-stream" } });
        toast(`Uploaded ${f.name} (${fmtBytes(res.bytesWritten)})`);
      } catch (err) { messages.error(err); }
    }
    load();
  } });

  const load = async () => {
    try {
      const res = await api("GET", `${ws(key)}/fs/entries`, { query: { path: dir } });
      if (!stillHere(gen)) return;
      const items = (res.items || []).slice().sort((a, b) => (a.type === "directory" ? 0 : 1) - (b.type === "directory" ? 0 : 1) || a.name.localeCompare(b.name));
      const rows = [];
      if (root && dir !== root) rows.push(h("tr", null, h("td", { colspan: 4 }, h("a", { class: "file-name", href: link(parentPath(dir)) }, h("span", { class: "icon" }, "↰"), ".."))));
      for (const e of items) {
        const isDir = e.type === "directory";
        rows.push(h("tr", { class: e.path === file ? "selected" : "", dataset: { name: e.name } },
          h("td", null, h("a", { class: "file-name", href: isDir ? link(e.path) : link(dir, e.path) },
            h("span", { class: `ficon ${isDir ? "dir" : e.type === "symlink" ? "link" : "file"}`, "aria-hidden": "true" }), h("span", { class: "break" }, e.name))),
          h("td", { class: "muted small nowrap" }, isDir ? "—" : fmtBytes(e.size)),
          h("td", { class: "muted small hide-phone" }, timeEl(e.modifiedAt)),
          h("td", { class: "actions" },
            isDir ? null : h("button", { class: "small", type: "button", onclick: () => download(key, e.path, messages) }, "Download"),
            h("button", { class: "small hide-phone", type: "button", "aria-label": `Rename ${e.name}`, onclick: () => renameEntry(e) }, "Rename"),
            h("button", { class: "small danger", type: "button", "aria-label": `Delete ${e.name}`, onclick: () => deleteEntry(e, isDir) }, "Delete"))));
      }
      clear(listHost, h("div", { class: "table-wrap" }, h("table", null,
        h("thead", null, h("tr", null, h("th", null, "Name"), h("th", null, "Size"), h("th", { class: "hide-phone" }, "Modified"), h("th", null, ""))),
        h("tbody", null, rows))),
        items.length === 0 ? h("div", { class: "empty-state" }, "This directory is empty.") : null);
    } catch (err) {
      if (stillHere(gen)) clear(listHost, errorBox(err));
    }
  };

  async function deleteEntry(e, isDir) {
    if (!await confirmDialog(`Delete ${e.name}?`, isDir ? `The directory ${e.path} and everything in it will be deleted.` : `The file ${e.path} will be deleted.`)) return;
    try {
      await api("DELETE", `${ws(key)}/fs/entry`, { query: { path: e.path, recursive: isDir ? "true" : undefined } });
      toast(`Deleted ${e.name}`);
      if (file === e.path) go(link(dir)); else load();
    } catch (err) { messages.error(err); }
  }

  async function renameEntry(e) {
    const v = await askDialog({ title: `Rename ${e.name}`, message: "A new name in this directory, or an absolute path to move it.", fields: [{ name: "name", label: "New name", value: e.name }], okLabel: "Rename" });
    if (!v || !v.name || v.name === e.name) return;
    try {
      await api("POST", `${ws(key)}/fs/move`, { json: { from: e.path, to: joinPath(dir, v.name) } });
      toast(`Renamed to ${v.name}`);
      if (file === e.path) go(link(dir)); else load();
    } catch (err) { messages.error(err); }
  }

  const newFile = async () => {
    const v = await askDialog({ title: "New file", message: `Create a file in ${dir}`, fields: [{ name: "name", label: "File name", placeholder: "notes.txt" }], okLabel: "Create" });
    if (!v || !v.name) return;
    const q = new URLSearchParams({ path: dir, file: joinPath(dir, v.name), new: "1" });
    go(`${base}/files?${q}`);
  };
  const newFolder = async () => {
    const v = await askDialog({ title: "New folder", message: `Create a directory in ${dir}`, fields: [{ name: "name", label: "Folder name", placeholder: "src" }], okLabel: "Create" });
    if (!v || !v.name) return;
    try { await api("POST", `${ws(key)}/fs/mkdir`, { json: { path: joinPath(dir, v.name), recursive: true } }); toast(`Created ${v.name}`); load(); }
    catch (err) { messages.error(err); }
  };

  const listPanel = h("section", { class: "panel flush" },
    h("div", { class: "panel-head" }, crumbs, h("span", { class: "spacer" }),
      h("button", { type: "button", class: "small", onclick: newFile }, "New file"),
      h("button", { type: "button", class: "small", onclick: newFolder }, "New folder"),
      h("button", { type: "button", class: "small", onclick: () => upload.click() }, "Upload"),
      h("button", { type: "button", class: "small", onclick: () => { clear(listHost, loading()); load(); } }, "Refresh"),
      upload),
    listHost);

  const parts = [messages];
  const editor = file ? editorPanel(ctx, file, isNew, () => load(), () => go(link(dir)), messages) : null;
  if (editor) parts.push(h("div", { class: "two-col" }, listPanel, editor));
  else parts.push(listPanel);
  clear(content, parts);
  if (editor) revealOnPhone(editor);
  load();
}

function editorPanel(ctx, path, isNew, onSaved, onClose, messages) {
  const { key, gen } = ctx;
  const body = h("div", { class: "panel-body" }, loading("Opening file…"));
  const status = h("span", { class: "muted small", role: "status" });
  const saveBtn = h("button", { type: "button", class: "primary small", disabled: true }, "Save");
  let editor = null;

  const save = async () => {
    if (!editor) return;
    saveBtn.disabled = true; status.textContent = "Saving…";
    try {
      const res = await api("PUT", `${ws(key)}/fs/file`, { query: { path }, body: new TextEncoder().encode(editor.value), headers: { "Content-Type": "application/octet-stream" } });
      status.textContent = `Saved ${fmtBytes(res.bytesWritten)} at ${new Date().toLocaleTimeString()}`;
      onSaved();
    } catch (err) {
      status.textContent = "";
      messages.error(err);
    } finally { saveBtn.disabled = false; }
  };
  saveBtn.addEventListener("click", save);

  const showEditor = (text, note) => {
    editor = h("textarea", { class: "editor", "aria-label": "File content", spellcheck: "false", value: text,
      onkeydown: (ev) => { if ((ev.ctrlKey || ev.metaKey) && ev.key === "s") { ev.preventDefault(); save(); } },
      oninput: () => { status.textContent = "Unsaved changes"; } });
    saveBtn.disabled = false;
    clear(body, note ? alertBox("info", note) : null, editor);
  };

  (async () => {
    if (isNew) { showEditor("", "New file: it is created when you save."); return; }
    try {
      const res = await api("GET", `${ws(key)}/fs/file`, { query: { path }, raw: true });
      const buf = new Uint8Array(await res.arrayBuffer());
      if (!stillHere(gen)) return;
      const sample = buf.subarray(0, 8000);
      if (sample.includes(0)) { clear(body, alertBox("info", `Binary file, ${fmtBytes(buf.length)}. Use Download to get it.`)); return; }
      if (buf.length > 2 * 1024 * 1024) { clear(body, alertBox("info", `This file is ${fmtBytes(buf.length)}, too large to edit here. Use Download.`)); return; }
      showEditor(new TextDecoder().decode(buf));
    } catch (err) {
      if (stillHere(gen)) clear(body, errorBox(err));
    }
  })();

  return h("section", { class: "panel flush", "aria-label": "File editor" },
    h("div", { class: "panel-head" }, h("h3", { class: "mono break" }, path), h("span", { class: "spacer" }), status,
      saveBtn,
      h("button", { type: "button", class: "small", onclick: () => download(key, path, messages) }, "Download"),
      h("button", { type: "button", class: "small", onclick: onClose }, "Close")),
    body);
}

async function download(key, path, messages) {
  try {
    const res = await api("GET", `${ws(key)}/fs/file`, { query: { path }, raw: true });
    const blob = await res.blob();
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: baseName(path), hidden: true });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30000);
  } catch (err) { messages.error(err); }
}

// ---------- Processes ----------

/** A process's status: running, or how it exited (its code or signal); a status this Inspector does not know as is. */
function processBadge(p) {
  if (p.status === "exited") {
    const text = p.signal ? `killed (${p.signal})` : `exit ${p.exitCode ?? "?"}`;
    return h("span", { class: `badge state tone-${p.exitCode === 0 && !p.signal ? "ok" : "danger"}`, title: stateInfo("process", "exited").title, dataset: { kind: "process", state: "exited", known: "true" } }, text);
  }
  return stateBadge("process", p.status);
}

function renderProcesses(ctx) {
  const { key, base, gen, query, content } = ctx;
  const selected = query.get("id");
  const messages = messageArea();
  const listHost = h("div", null, loading("Loading processes…"));
  const mode = h("select", { "aria-label": "How to run" },
    h("option", { value: "shell" }, "Shell line (sh -c), live output"),
    h("option", { value: "args" }, "Command + args (no shell)"),
    h("option", { value: "exec" }, "Exec and wait for the result"));
  const line = h("input", { class: "grow mono", "aria-label": "Command", placeholder: "e.g. python3 -m http.server 8000", required: true, autocomplete: "off", spellcheck: "false" });
  const startBtn = h("button", { type: "submit", class: "primary" }, "Run");
  const resultHost = h("div");

  const load = async () => {
    try {
      const res = await api("GET", `${ws(key)}/processes`);
      if (!stillHere(gen)) return;
      const items = (res.items || []).slice().sort((a, b) => String(b.startedAt).localeCompare(String(a.startedAt)));
      if (items.length === 0) { clear(listHost, h("div", { class: "empty-state" }, "No processes. Start one above.")); return; }
      clear(listHost, h("div", { class: "table-wrap" }, h("table", null,
        h("thead", null, h("tr", null, h("th", null, "Command"), h("th", null, "Status"), h("th", { class: "hide-phone" }, "PID"), h("th", { class: "hide-phone" }, "Started"), h("th", null, ""))),
        h("tbody", null, items.map((p) => h("tr", { class: `clickable ${p.id === selected ? "selected" : ""}`, onclick: () => go(`${base}/processes?id=${encodeURIComponent(p.id)}`) },
          h("td", { class: "mono break" }, [p.command, ...(p.args || [])].join(" ")),
          h("td", null, processBadge(p)),
          h("td", { class: "hide-phone muted" }, p.pid ?? "—"),
          h("td", { class: "hide-phone" }, timeEl(p.startedAt)),
          h("td", { class: "actions" }, p.status === "running" ? h("button", { type: "button", class: "small danger", onclick: (ev) => { ev.stopPropagation(); kill(p.id, "KILL"); } }, "Kill") : null)))))));
    } catch (err) { if (stillHere(gen)) clear(listHost, errorBox(err)); }
  };

  async function kill(id, signal) {
    try { await api("POST", `${ws(key)}/processes/${encodeURIComponent(id)}/signal`, { json: { signal } }); toast(`Sent ${signal}`); setTimeout(load, 400); }
    catch (err) { messages.error(err); }
  }

  const form = h("form", { class: "inline", onsubmit: async (ev) => {
    ev.preventDefault();
    const text = line.value.trim();
    if (!text) return;
    startBtn.disabled = true; messages.reset();
    try {
      if (mode.value === "exec") {
        clear(resultHost, loading("Running…"));
        const r = await api("POST", `${ws(key)}/exec`, { json: { command: text, timeoutMs: 120000 } });
        if (!stillHere(gen)) return;
        const out = h("pre", { class: "output", "aria-label": "Exec output" });
        if (r.stdout) out.appendChild(h("span", null, r.stdout));
        if (r.stderr) out.appendChild(h("span", { class: "stderr" }, r.stderr));
        out.appendChild(h("span", { class: "sys" }, `\n[exit ${r.exitCode} · ${fmtMs(r.durationMs)}${r.timedOut ? " · timed out" : ""}${r.truncated ? " · output truncated" : ""}]`));
        clear(resultHost, h("section", { class: "panel" }, h("h3", { class: "mono break" }, `$ ${text}`), out));
      } else {
        const body = mode.value === "shell" ? { command: "/bin/sh", args: ["-c", text] } : (() => { const a = splitArgs(text); return { command: a[0], args: a.slice(1) }; })();
        const p = await api("POST", `${ws(key)}/processes`, { json: body });
        go(`${base}/processes?id=${encodeURIComponent(p.id)}`);
      }
    } catch (err) { clear(resultHost); messages.error(err); }
    finally { startBtn.disabled = false; }
  } }, mode, line, startBtn);

  const outputPanel = selected ? processOutputPanel(ctx, selected, kill, load) : null;
  clear(content,
    messages,
    h("section", { class: "panel" }, h("h2", null, "Run a command"), form),
    resultHost,
    h("div", { class: selected ? "two-col" : "" },
      h("section", { class: "panel flush" }, h("div", { class: "panel-head" }, h("h2", null, "Processes"), h("span", { class: "spacer" }), h("button", { type: "button", class: "small", onclick: load }, "Refresh")), listHost),
      outputPanel));
  load();
}

function processOutputPanel(ctx, id, kill, reloadList) {
  const { key, gen } = ctx;
  const out = h("pre", { class: "output", "aria-label": "Process output" });
  const head = h("div", { class: "panel-head" }, h("h3", { class: "mono" }, id));
  const panel = h("section", { class: "panel flush" }, head, h("div", { class: "panel-body" }, out));
  const append = (text, cls) => {
    const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 20;
    out.appendChild(cls ? h("span", { class: cls }, text) : document.createTextNode(text));
    if (atBottom) out.scrollTop = out.scrollHeight;
  };
  const drawHead = (p) => clear(head, h("h3", { class: "mono break" }, [p.command, ...(p.args || [])].join(" ")), h("span", { class: "spacer" }),
    p.status === "running" ? [
      h("button", { type: "button", class: "small", onclick: () => kill(id, "INT") }, "Interrupt"),
      h("button", { type: "button", class: "small", onclick: () => kill(id, "TERM") }, "Terminate"),
      h("button", { type: "button", class: "small danger", onclick: () => kill(id, "KILL") }, "Kill")]
      : processBadge(p));
  revealOnPhone(panel);
  (async () => {
    try {
      const p = await api("GET", `${ws(key)}/processes/${encodeURIComponent(id)}`);
      if (!stillHere(gen)) return;
      drawHead(p);
      if (p.status !== "running") {
        const o = await api("GET", `${ws(key)}/processes/${encodeURIComponent(id)}/output`);
        if (!stillHere(gen)) return;
        if (o.stdout) append(o.stdout);
        if (o.stderr) append(o.stderr, "stderr");
        append(`[exited${p.signal ? ` by signal ${p.signal}` : ` with code ${p.exitCode}`}]\n`, "sys");
        return;
      }
      const stream = sse(`${ws(key)}/processes/${encodeURIComponent(id)}/output?follow=true`, {
        retry: false,
        onEvent: ({ event, data }) => {
          if (event === "processOutput") append(decodeData(data), data.stream === "stderr" ? "stderr" : null);
          else if (event === "processExit") {
            append(`\n[exited${data.signal ? ` by signal ${data.signal}` : ` with code ${data.exitCode}`}]\n`, "sys");
            drawHead({ ...p, status: "exited", exitCode: data.exitCode, signal: data.signal });
            reloadList();
            return "stop";
          }
        },
        onError: (err) => append(`\n[stream error: ${errorText(err)}]\n`, "stderr"),
      });
      onLeave(() => stream.close());
    } catch (err) { if (stillHere(gen)) clear(out, errorText(err)); }
  })();
  return panel;
}

// ---------- Terminal ----------

function renderTerminal(ctx) {
  const { key, gen, content } = ctx;
  const messages = messageArea();
  const status = h("span", { class: "muted small", role: "status" }, "Starting a shell…");
  const host = h("div", { class: "term-host", "aria-label": "Terminal" });
  let session = null;

  const stop = () => { if (session) { session.dispose(); session = null; } };
  const startShell = async () => {
    stop();
    messages.reset();
    status.textContent = "Starting a shell…";
    clear(host);
    if (typeof window.Terminal !== "function" || !window.FitAddon) { messages.error(new Error("The terminal library (vendor/xterm) did not load.")); return; }
    const term = new window.Terminal({ cursorBlink: true, fontSize: 13, fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, monospace', theme: { background: "#0f1322" }, scrollback: 5000, rendererType: "dom" });
    const fit = new window.FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(host);
    try { fit.fit(); } catch { /* not visible yet */ }
    let socket = null; let shellId = null; let disposed = false;
    const ro = new ResizeObserver(() => { try { fit.fit(); } catch { /* ignore */ } });
    ro.observe(host);
    session = {
      dispose() {
        disposed = true;
        ro.disconnect();
        if (socket) { try { socket.close(); } catch { /* ignore */ } }
        term.dispose();
        if (shellId) api("DELETE", `${ws(key)}/shells/${encodeURIComponent(shellId)}`).catch(() => {});
      },
    };
    try {
      const res = await api("POST", `${ws(key)}/shells`, { json: { cols: term.cols, rows: term.rows } });
      shellId = res.id;
      if (disposed) { api("DELETE", `${ws(key)}/shells/${encodeURIComponent(shellId)}`).catch(() => {}); return; }
    } catch (err) {
      if (!disposed) { status.textContent = "No shell"; messages.error(err); }
      return;
    }
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${proto}//${location.host}${ws(key)}/shells/${encodeURIComponent(shellId)}/ws?access_token=${encodeURIComponent(auth.token || "")}`;
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    const encoder = new TextEncoder();
    socket.onopen = () => {
      status.textContent = `Connected · shell ${shellId}`;
      socket.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
      term.focus();
    };
    socket.onmessage = (ev) => {
      if (typeof ev.data === "string") {
        let msg = null; try { msg = JSON.parse(ev.data); } catch { term.write(ev.data); return; }
        if (msg && msg.type === "exit") {
          term.write(`\r\n\x1b[2m[the shell exited${msg.exitCode === undefined || msg.exitCode === null ? "" : ` with code ${msg.exitCode}`}]\x1b[0m\r\n`);
          status.textContent = `Shell exited${msg.exitCode === undefined || msg.exitCode === null ? "" : ` (code ${msg.exitCode})`}`;
          shellId = null;
        }
      } else {
        term.write(new Uint8Array(ev.data));
      }
    };
    socket.onclose = () => { if (!disposed && shellId) status.textContent = "Disconnected"; };
    socket.onerror = () => { if (!disposed) messages.error(new Error("The terminal connection failed.")); };
    term.onData((data) => { if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data)); });
    term.onResize(({ cols, rows }) => { if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "resize", cols, rows })); });
  };
  onLeave(stop);

  clear(content,
    messages,
    h("section", { class: "panel flush" },
      h("div", { class: "panel-head" }, h("h2", null, "Terminal"), status, h("span", { class: "spacer" }),
        h("button", { type: "button", class: "small", onclick: startShell }, "New shell"),
        h("button", { type: "button", class: "small danger", onclick: () => { stop(); status.textContent = "Shell closed"; } }, "Close shell")),
      h("div", { class: "panel-body" }, h("div", { class: "term-wrap" }, host))));
  if (stillHere(gen)) startShell();
}

// ---------- Previews ----------

function renderPreviews(ctx) {
  const { key, gen, content } = ctx;
  const messages = messageArea();
  const listHost = h("div", null, loading("Loading previews…"));
  const port = h("input", { type: "number", min: 1, max: 65535, placeholder: "8000", "aria-label": "Port", required: true, style: "width: 8rem" });
  const expiry = h("select", { "aria-label": "Expires in" },
    h("option", { value: "900" }, "15 minutes"), h("option", { value: "3600", selected: true }, "1 hour"),
    h("option", { value: "21600" }, "6 hours"), h("option", { value: "86400" }, "24 hours"));
  const previewUrl = (token) => `${location.origin}/preview/${encodeURIComponent(token)}/`;
  // The list never carries the secret token (only an id); the links of previews made in this tab are remembered.
  const known = () => { try { return JSON.parse(sessionStorage.getItem("agentbox.inspector.previews") || "{}"); } catch { return {}; } };
  const remember = (p) => {
    const all = known(); all[`${key}|${p.id || p.token}`] = { token: p.token, url: p.url || previewUrl(p.token) };
    sessionStorage.setItem("agentbox.inspector.previews", JSON.stringify(all));
  };

  const load = async () => {
    try {
      const res = await api("GET", `${ws(key)}/previews`);
      if (!stillHere(gen)) return;
      const items = res.items || [];
      if (items.length === 0) { clear(listHost, h("div", { class: "empty-state" }, "No previews. Create one to share a port served inside the workspace.")); return; }
      const tokens = known();
      clear(listHost, h("div", { class: "table-wrap" }, h("table", null,
        h("thead", null, h("tr", null, h("th", null, "Port"), h("th", null, "Link"), h("th", { class: "hide-phone" }, "Expires"), h("th", null, ""))),
        h("tbody", null, items.map((p) => {
          const ident = p.id || p.token;
          const saved = tokens[`${key}|${ident}`];
          const token = p.token || (saved && (saved.token || saved));
          const url = (saved && saved.url) || (token ? previewUrl(token) : null);
          return h("tr", { dataset: { port: p.port, id: ident } },
            h("td", null, h("strong", null, String(p.port))),
            h("td", { class: "mono small break" }, url ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, `/preview/${String(token).slice(0, 8)}…/`)
              : h("span", { class: "muted", title: "The link is shown only to the tab that made it" }, `id ${ident}`)),
            h("td", { class: "hide-phone" }, timeEl(p.expiresAt)),
            h("td", { class: "actions" },
              url ? h("a", { class: "button small", href: url, target: "_blank", rel: "noopener noreferrer" }, "Open") : null,
              url ? h("button", { type: "button", class: "small hide-phone", onclick: () => navigator.clipboard?.writeText(url).then(() => toast("Link copied"), () => toast("Could not copy", "error")) }, "Copy link") : null,
              h("button", { type: "button", class: "small danger", onclick: () => revoke(p, ident) }, "Revoke")));
        })))));
    } catch (err) { if (stillHere(gen)) clear(listHost, errorBox(err)); }
  };
  async function revoke(p, ident) {
    try { await api("DELETE", `${ws(key)}/previews/${encodeURIComponent(ident)}`); toast(`Preview of port ${p.port} revoked`); load(); }
    catch (err) { messages.error(err); }
  }
  const form = h("form", { class: "inline", onsubmit: async (ev) => {
    ev.preventDefault();
    messages.reset();
    try {
      const p = await api("POST", `${ws(key)}/previews`, { json: { port: Number(port.value), expiresInSeconds: Number(expiry.value) } });
      remember(p);
      messages.info(`Preview of port ${p.port} created: ${p.url || previewUrl(p.token)}`, "success");
      port.value = "";
      load();
    } catch (err) { messages.error(err); }
  } }, h("label", { class: "field" }, "Port", port), h("label", { class: "field" }, "Expires in", expiry), h("button", { type: "submit", class: "primary" }, "Create preview"));
  clear(content, messages,
    h("section", { class: "panel" }, h("h2", null, "Share a port"), h("p", { class: "muted small" }, "A preview link proxies to a server listening on that port inside the workspace; the link itself is the credential."), form),
    h("section", { class: "panel flush" }, h("div", { class: "panel-head" }, h("h2", null, "Previews"), h("span", { class: "spacer" }), h("button", { type: "button", class: "small", onclick: load }, "Refresh")), listHost));
  load();
}

// ---------- Cron ----------

function renderCron(ctx) {
  const { key, base, gen, query, content } = ctx;
  const selected = query.get("job");
  const messages = messageArea();
  const listHost = h("div", null, loading("Loading cron jobs…"));
  const runsHost = h("div");
  const schedule = h("input", { "aria-label": "Schedule", placeholder: "*/5 * * * *", required: true, class: "mono", autocomplete: "off" });
  const command = h("input", { "aria-label": "Command", placeholder: "date >> /workspace/cron.log", required: true, class: "grow mono", autocomplete: "off" });

  const load = async () => {
    try {
      const res = await api("GET", `${ws(key)}/cron`);
      if (!stillHere(gen)) return;
      const items = res.items || [];
      if (items.length === 0) { clear(listHost, h("div", { class: "empty-state" }, "No cron jobs.")); return; }
      clear(listHost, h("div", { class: "table-wrap" }, h("table", null,
        h("thead", null, h("tr", null, h("th", null, "Schedule"), h("th", null, "Action"), h("th", { class: "hide-phone" }, "Next run"), h("th", { class: "hide-phone" }, "Last run"), h("th", { class: "hide-phone" }, "Runs"), h("th", null, ""))),
        h("tbody", null, items.map((j) => h("tr", { class: j.id === selected ? "selected" : "" },
          h("td", null, h("span", { class: "mono" }, j.schedule), " ", j.enabled === false ? badge("disabled", "") : null, h("div", { class: "muted small" }, j.timezone || "UTC")),
          h("td", { class: "mono small break" }, j.action?.type === "exec" ? j.action.command : j.action?.type === "session" ? `session ${j.action.agent}: ${j.action.prompt}` : JSON.stringify(j.action)),
          h("td", { class: "hide-phone" }, timeEl(j.nextRunAt)),
          h("td", { class: "hide-phone" }, timeEl(j.lastRunAt)),
          h("td", { class: "hide-phone" }, String(j.runCount ?? 0), j.running ? [" ", stateBadge("cron", "running")] : null),
          h("td", { class: "actions" },
            h("a", { class: "button small", href: `${base}/cron?job=${encodeURIComponent(j.id)}` }, "Runs"),
            h("button", { type: "button", class: "small", onclick: () => runNow(j) }, "Run now"),
            h("button", { type: "button", class: "small danger", onclick: () => remove(j) }, "Delete"))))))));
    } catch (err) { if (stillHere(gen)) clear(listHost, errorBox(err)); }
  };
  const loadRuns = async () => {
    if (!selected) return;
    try {
      const res = await api("GET", `${ws(key)}/cron/${encodeURIComponent(selected)}/runs`, { query: { limit: 50 } });
      if (!stillHere(gen)) return;
      const items = res.items || [];
      clear(runsHost, h("section", { class: "panel flush" },
        h("div", { class: "panel-head" }, h("h2", null, "Runs of ", h("span", { class: "mono" }, selected)), h("span", { class: "spacer" }), h("button", { type: "button", class: "small", onclick: loadRuns }, "Refresh")),
        items.length === 0 ? h("div", { class: "empty-state" }, "This job has not run yet.") :
          h("div", { class: "table-wrap" }, h("table", null,
            h("thead", null, h("tr", null, h("th", null, "Status"), h("th", null, "Scheduled"), h("th", { class: "hide-phone" }, "Duration"), h("th", null, "Output"))),
            h("tbody", null, items.map((r) => h("tr", null,
              h("td", null, stateBadge("cron", r.status), r.exitCode !== undefined && r.exitCode !== null ? h("div", { class: "muted small" }, `exit ${r.exitCode}`) : null),
              h("td", null, timeEl(r.scheduledAt)),
              h("td", { class: "hide-phone" }, r.startedAt && r.endedAt ? fmtMs(new Date(r.endedAt) - new Date(r.startedAt)) : "—"),
              h("td", { class: "mono small break" }, [r.stdout, r.stderr, r.error, r.stopReason ? `stop: ${r.stopReason}` : null].filter(Boolean).join("\n").slice(0, 500) || "—"))))))));
    } catch (err) { if (stillHere(gen)) clear(runsHost, errorBox(err)); }
  };
  async function runNow(j) {
    try { await api("POST", `${ws(key)}/cron/${encodeURIComponent(j.id)}/run`); toast("Run started"); setTimeout(() => { load(); loadRuns(); }, 1000); }
    catch (err) { messages.error(err); }
  }
  async function remove(j) {
    if (!await confirmDialog("Delete this cron job?", `${j.schedule} — it will not run again.`)) return;
    try { await api("DELETE", `${ws(key)}/cron/${encodeURIComponent(j.id)}`); toast("Cron job deleted"); load(); }
    catch (err) { messages.error(err); }
  }
  const form = h("form", { class: "inline", onsubmit: async (ev) => {
    ev.preventDefault(); messages.reset();
    try {
      await api("POST", `${ws(key)}/cron`, { json: { schedule: schedule.value.trim(), action: { type: "exec", command: command.value } } });
      toast("Cron job created"); schedule.value = ""; command.value = ""; load();
    } catch (err) { messages.error(err); }
  } }, h("label", { class: "field" }, "Schedule", schedule), h("label", { class: "field grow" }, "Command (sh -c)", command), h("button", { type: "submit", class: "primary" }, "Create job"));
  clear(content, messages,
    h("section", { class: "panel" }, h("h2", null, "New cron job"), h("p", { class: "muted small" }, "Cron expression (5 or 6 fields), a macro like @hourly, or an RFC 3339 instant for a one-shot job. Times are UTC."), form),
    h("section", { class: "panel flush" }, h("div", { class: "panel-head" }, h("h2", null, "Jobs"), h("span", { class: "spacer" }), h("button", { type: "button", class: "small", onclick: load }, "Refresh")), listHost),
    runsHost);
  load(); loadRuns();
}

// ---------- Events ----------

function eventSummary(name, d) {
  if (!d || typeof d !== "object") return String(d ?? "");
  switch (name) {
    case "vmBooted": return `booted in ${fmtMs(d.bootMs)}`;
    case "vmShutdown": return `shut down (${d.reason || "?"})`;
    case "processOutput": return `${d.processId} ${d.stream}: ${decodeData(d).slice(0, 300)}`;
    case "processExit": return `${d.processId} exited${d.signal ? ` by signal ${d.signal}` : ` with code ${d.exitCode}`}`;
    case "sessionEvent": return `${d.sessionId} #${d.seq}: ${d.event?.type || ""}`;
    case "permissionRequest": return `${d.sessionId} asks permission: ${d.toolCall?.title || d.toolCall?.kind || "a tool call"}`;
    case "cronEvent": return `${d.jobId} ${d.kind}${d.durationMs !== undefined ? ` in ${fmtMs(d.durationMs)}` : ""}${d.error ? `: ${d.error}` : ""}`;
    default: return JSON.stringify(d).slice(0, 300);
  }
}

function renderEvents(ctx) {
  const { content, onEvent, onStream } = ctx;
  const list = h("tbody");
  const empty = h("div", { class: "empty-state" }, "Waiting for events… run a command, a session or a cron job and they appear here.");
  let paused = false;
  const counter = h("span", { class: "muted small", role: "status" }, "connecting…");
  let open = false;
  const showState = () => { counter.textContent = paused ? "paused" : open ? "live" : "connecting…"; };
  onStream((isOpen) => { open = isOpen; showState(); });
  const pauseBtn = h("button", { type: "button", class: "small", onclick: () => { paused = !paused; pauseBtn.textContent = paused ? "Resume" : "Pause"; showState(); } }, "Pause");
  const showShell = h("input", { type: "checkbox", "aria-label": "Show terminal output" });
  onEvent((ev) => {
    if (paused) return;
    if (ev.event === "shellData" && !showShell.checked) return;
    empty.remove();
    list.prepend(h("tr", null,
      h("td", { class: "muted small nowrap" }, new Date().toLocaleTimeString()),
      h("td", null, badge(ev.event, ev.event === "processExit" || ev.event === "vmShutdown" ? "" : ev.event === "permissionRequest" ? "pending" : "running")),
      h("td", { class: "mono small break" }, eventSummary(ev.event, ev.data))));
    while (list.children.length > 300) list.lastChild.remove();
  });
  clear(content, h("section", { class: "panel flush" },
    h("div", { class: "panel-head" }, h("h2", null, "Workspace events"), counter, h("span", { class: "spacer" }),
      h("label", { class: "small row center", style: "gap: .3rem" }, showShell, "terminal output"),
      pauseBtn,
      h("button", { type: "button", class: "small", onclick: () => { list.replaceChildren(); } }, "Clear")),
    h("div", { class: "table-wrap" }, h("table", { "aria-label": "Workspace events" },
      h("thead", null, h("tr", null, h("th", null, "Time"), h("th", null, "Event"), h("th", null, "Detail"))), list)),
    empty));
}

// ---------- Usage & metrics ----------

function renderUsage(ctx) {
  const { key, gen, content } = ctx;
  const metricsHost = h("div", null, loading("Loading metrics…"));
  const usageHost = h("div", null, loading("Loading usage…"));
  const stat = (label, value, sub, ratio) => h("div", { class: "stat" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value), sub ? h("div", { class: "sub" }, sub) : null,
    ratio !== undefined ? h("div", { class: "meter" }, h("span", { style: `width: ${Math.min(100, Math.max(0, ratio * 100)).toFixed(1)}%` })) : null);
  const loadMetrics = async () => {
    try {
      const m = await api("GET", `${ws(key)}/metrics`);
      if (!stillHere(gen)) return;
      clear(metricsHost, h("div", { class: "stats" },
        stat("State", stateBadge("workspace", m.state), m.state === "sleeping" ? "live figures are 0 while asleep" : null),
        stat("CPU time", fmtMs(m.cpuUsageMs)),
        stat("Memory", fmtBytes(m.memoryBytes), `peak ${fmtBytes(m.memoryPeakBytes)}`),
        stat("Processes", fmtNumber(m.pids)),
        stat("Disk", fmtBytes(m.diskBytes), m.diskLimitBytes ? `of ${fmtBytes(m.diskLimitBytes)}` : null, m.diskLimitBytes ? m.diskBytes / m.diskLimitBytes : undefined),
        stat("Network", `↓ ${fmtBytes(m.netRxBytes)}`, `↑ ${fmtBytes(m.netTxBytes)} sent`)),
        h("p", { class: "muted small" }, "Sampled ", timeEl(m.sampledAt), " · refreshes every 5 s"));
    } catch (err) { if (stillHere(gen)) clear(metricsHost, errorBox(err)); }
  };
  const tokenTable = (title, map, keyLabel) => {
    const entries = Object.entries(map || {});
    if (entries.length === 0) return null;
    return h("section", { class: "panel flush" }, h("div", { class: "panel-head" }, h("h3", null, title)),
      h("div", { class: "table-wrap" }, h("table", null,
        h("thead", null, h("tr", null, h("th", null, keyLabel), h("th", null, "Requests"), h("th", null, "Input"), h("th", null, "Output"), h("th", { class: "hide-phone" }, "Cache read"), h("th", { class: "hide-phone" }, "Cache write"))),
        h("tbody", null, entries.map(([k, v]) => h("tr", null, h("td", { class: "mono break" }, k), h("td", null, fmtNumber(v.requests)), h("td", null, fmtNumber(v.inputTokens)), h("td", null, fmtNumber(v.outputTokens)), h("td", { class: "hide-phone" }, fmtNumber(v.cacheReadTokens)), h("td", { class: "hide-phone" }, fmtNumber(v.cacheWriteTokens))))))));
  };
  const loadUsage = async () => {
    try {
      const u = await api("GET", `${ws(key)}/usage`);
      if (!stillHere(gen)) return;
      const llm = u.llm || {};
      const budget = u.budget;
      clear(usageHost,
        h("div", { class: "stats" },
          stat("LLM requests", fmtNumber(llm.requests)),
          stat("Input tokens", fmtNumber(llm.inputTokens)),
          stat("Output tokens", fmtNumber(llm.outputTokens)),
          stat("Cache tokens", fmtNumber((llm.cacheReadTokens || 0) + (llm.cacheWriteTokens || 0)), `${fmtNumber(llm.cacheReadTokens)} read · ${fmtNumber(llm.cacheWriteTokens)} written`),
          stat("Host tool calls", fmtNumber(u.toolCalls))),
        budget ? h("section", { class: "panel" }, h("h3", null, "Budget"),
          h("div", { class: "stats" }, Object.entries(budget).map(([k, v]) => stat(k.replace(/([A-Z])/g, " $1").toLowerCase(), typeof v === "number" ? fmtNumber(v) : Array.isArray(v) ? v.join(", ") || "—" : typeof v === "object" && v ? JSON.stringify(v) : String(v))))) : null,
        tokenTable("By model", llm.byModel, "Model"),
        tokenTable("By session", llm.bySession, "Session"));
    } catch (err) { if (stillHere(gen)) clear(usageHost, errorBox(err)); }
  };
  clear(content,
    h("div", { class: "page-head" }, h("h2", null, "Resources"), h("span", { class: "spacer" }), h("button", { type: "button", class: "small", onclick: () => { loadMetrics(); loadUsage(); } }, "Refresh")),
    metricsHost,
    h("h2", null, "LLM gateway usage"),
    usageHost);
  loadMetrics(); loadUsage();
  const timer = setInterval(loadMetrics, 5000);
  onLeave(() => clearInterval(timer));
}

// ---------- Tokens ----------

function renderTokens(main) {
  const gen = routeGeneration;
  const messages = messageArea();
  const secretHost = h("div");
  const listHost = h("div", null, loading("Loading tokens…"));
  const label = h("input", { "aria-label": "Label", placeholder: "ci-bot", autocomplete: "off" });
  const role = h("select", { "aria-label": "Role" }, h("option", { value: "user" }, "user"), h("option", { value: "reader" }, "reader"), h("option", { value: "admin" }, "admin"));
  const patterns = h("input", { "aria-label": "Workspace patterns", placeholder: "team-a-*, demo", value: "*", required: true, class: "mono", autocomplete: "off" });
  const expires = h("select", { "aria-label": "Expires" }, h("option", { value: "" }, "never"), h("option", { value: "3600" }, "1 hour"), h("option", { value: "86400", selected: true }, "1 day"), h("option", { value: "604800" }, "7 days"), h("option", { value: "2592000" }, "30 days"));

  const load = async () => {
    try {
      const res = await api("GET", "/v1/tokens");
      if (!stillHere(gen)) return;
      const items = res.items || [];
      if (items.length === 0) { clear(listHost, h("div", { class: "empty-state" }, "No tokens besides the server's own.")); return; }
      clear(listHost, h("div", { class: "table-wrap" }, h("table", null,
        h("thead", null, h("tr", null, h("th", null, "Label"), h("th", null, "Role"), h("th", null, "Workspaces"), h("th", { class: "hide-phone" }, "Expires"), h("th", { class: "hide-phone" }, "ID"), h("th", null, ""))),
        h("tbody", null, items.map((t) => h("tr", null,
          h("td", null, t.label || h("span", { class: "muted" }, "—")),
          h("td", null, badge(t.role, t.role === "admin" ? "admin" : "")),
          h("td", { class: "mono small break" }, (t.workspaces || []).join(", ")),
          h("td", { class: "hide-phone" }, t.expiresAt ? timeEl(t.expiresAt) : "never"),
          h("td", { class: "hide-phone mono small" }, t.id),
          h("td", { class: "actions" }, h("button", { type: "button", class: "small danger", onclick: () => remove(t) }, "Delete"))))))));
    } catch (err) {
      if (!stillHere(gen)) return;
      clear(listHost, errorBox(err), err instanceof ApiError && err.status === 403 ? h("p", { class: "muted small", style: "padding: 0 1rem" }, "Only admin tokens may manage tokens.") : null);
    }
  };
  async function remove(t) {
    if (!await confirmDialog(`Delete token ${t.label || t.id}?`, "It is refused from then on and its open streams close.")) return;
    try { await api("DELETE", `/v1/tokens/${encodeURIComponent(t.id)}`); toast("Token deleted"); load(); }
    catch (err) { messages.error(err); }
  }
  const form = h("form", { class: "inline", onsubmit: async (ev) => {
    ev.preventDefault(); messages.reset(); clear(secretHost);
    const body = { role: role.value, workspaces: patterns.value.split(",").map((s) => s.trim()).filter(Boolean) };
    if (label.value.trim()) body.label = label.value.trim();
    if (expires.value) body.expiresInSeconds = Number(expires.value);
    try {
      const t = await api("POST", "/v1/tokens", { json: body });
      const copy = h("button", { type: "button", class: "small", onclick: () => navigator.clipboard?.writeText(t.token).then(() => toast("Token copied"), () => toast("Could not copy; select it instead", "error")) }, "Copy");
      clear(secretHost, h("div", { class: "alert success secret-box", role: "status" }, h("div", { class: "alert-text" },
        h("strong", null, "Token created. Copy it now: it is shown only once."),
        h("div", { class: "row center", style: "margin-top: .5rem" }, h("code", { class: "secret grow", "aria-label": "New token secret" }, t.token), copy))));
      label.value = "";
      load();
    } catch (err) { messages.error(err); }
  } },
  h("label", { class: "field" }, "Label", label), h("label", { class: "field" }, "Role", role),
  h("label", { class: "field grow" }, "Workspace patterns (comma separated, prefix*)", patterns), h("label", { class: "field" }, "Expires", expires),
  h("button", { type: "submit", class: "primary" }, "Create token"));
  const linkHost = h("div");
  const makeLink = async () => {
    try {
      const l = await api("POST", "/v1/login-links");
      const url = new URL(l.url, location.origin).href;
      clear(linkHost, h("div", { class: "alert success secret-box", role: "status" }, h("div", { class: "alert-text" },
        h("div", { class: "row center" }, h("code", { class: "secret grow", "aria-label": "Login link" }, url),
          h("button", { type: "button", class: "small", onclick: () => navigator.clipboard?.writeText(url).then(() => toast("Link copied"), () => toast("Could not copy; select it instead", "error")) }, "Copy")),
        h("div", { class: "small", style: "margin-top: .4rem" }, "Works once, until ", timeEl(l.expiresAt), "."))));
    } catch (err) { clear(linkHost, errorBox(err)); }
  };
  clear(main,
    h("div", { class: "page-head" }, h("h1", null, "Tokens"), h("span", { class: "spacer" }), h("button", { type: "button", onclick: load }, "Refresh")),
    messages,
    h("section", { class: "panel" }, h("h2", null, "New token"), form, secretHost),
    h("section", { class: "panel flush" }, listHost),
    h("section", { class: "panel" }, h("h2", null, "Sign in on another device"),
      h("p", { class: "muted small" }, "A one-time login link opens the Inspector signed in with your role and workspaces (a new token of at most 12 hours). It works once, within two minutes."),
      h("button", { type: "button", onclick: makeLink }, "Make a login link"), linkHost));
  load();
}

start();
