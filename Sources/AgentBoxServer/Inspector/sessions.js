// Sessions tab: agent sessions, their live transcript (SSE), permission replies, prompts.

import { h, clear, loading, errorText, errorBox, messageArea, api, ws, sse, confirmDialog, toast, timeEl, stateBadge, revealOnPhone } from "./lib.js";
import { onLeave, go, stillHere } from "./app.js";

// The transcript keeps this many rows (messages, cards, notes) in the DOM, the newest; older ones are removed and
// counted in a line at its top, whose button renders them again a page at a time. `#/w/KEY/sessions/ID?keep=N` sets
// another number (tests use a small one).
const TRANSCRIPT_KEEP = 2000;
const EARLIER_PAGE = 500;

const REPLY_FOR_KIND = { allow_once: "once", allow_always: "always", reject_once: "reject", reject_always: "reject" };
const LABEL_FOR_REPLY = { once: "Allow once", always: "Always", reject: "Reject" };
// Who answered a permission request or a question when it was not this page or another client (the transcript's
// `by` of permission_reply and question_reply: PermissionBroker and QuestionBroker's Answerer).
const ANSWERED_BY = {
  policy: "by the session's permission policy",
  always: "allowed always earlier in this session",
  timeout: "no answer in time",
  cancel: "the turn was cancelled",
  turnEnd: "the turn ended",
  agentExit: "the agent exited",
  storeFailure: "it could not be stored",
};
const answeredBy = (by) => (by && by !== "client" ? ` (${ANSWERED_BY[by] || `by ${by}`})` : "");
// Transcript events after which the session's status may have changed: the header and the list are read again.
const STATUS_EVENTS = new Set(["prompt", "turn_end", "close", "resume", "cancel", "agent_started", "agent_exited"]);

export function renderSessions(ctx) {
  const { key, base, gen, rest, content } = ctx;
  const selected = rest[0] || null;
  const messages = messageArea();
  const listHost = h("div", { class: "session-list" }, loading("Loading sessions…"));
  const agentSelect = h("select", { "aria-label": "Agent", class: "grow" }, h("option", { value: "" }, "Loading agents…"));
  const createBtn = h("button", { type: "submit", class: "primary" }, "New session");

  (async () => {
    try {
      const res = await api("GET", "/v1/agents");
      if (!stillHere(gen)) return;
      const items = res.items || [];
      clear(agentSelect, items.map((a) => h("option", { value: a.id, selected: a.id === "mock" }, `${a.name || a.id} (${a.id})${a.installed === false ? " · not installed" : ""}`)));
    } catch (err) { if (stillHere(gen)) { clear(agentSelect, h("option", { value: "mock" }, "mock")); messages.error(err); } }
  })();

  const loadList = async () => {
    try {
      const res = await api("GET", `${ws(key)}/sessions`);
      if (!stillHere(gen)) return;
      const items = (res.items || []).slice().sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt)));
      if (items.length === 0) { clear(listHost, h("div", { class: "empty-state" }, "No sessions yet.")); return; }
      clear(listHost, items.map((s) => h("a", { href: `${base}/sessions/${encodeURIComponent(s.id)}`, class: s.id === selected ? "active" : "" },
        h("div", { class: "row center" }, h("strong", null, s.agent), h("span", { class: "spacer" }), stateBadge("session", s.status)),
        h("div", { class: "muted small mono break" }, s.id),
        h("div", { class: "muted small" }, "created ", timeEl(s.createdAt)))));
    } catch (err) { if (stillHere(gen)) clear(listHost, errorBox(err)); }
  };

  const form = h("form", { class: "inline", onsubmit: async (ev) => {
    ev.preventDefault();
    if (!agentSelect.value) return;
    createBtn.disabled = true; messages.reset();
    try {
      const s = await api("POST", `${ws(key)}/sessions`, { json: { agent: agentSelect.value } });
      toast(`Session ${s.id} started`);
      go(`${base}/sessions/${encodeURIComponent(s.id)}`);
    } catch (err) { messages.error(err); }
    finally { createBtn.disabled = false; }
  } }, agentSelect, createBtn);

  const detail = selected ? sessionPanel(ctx, selected, loadList) :
    h("section", { class: "panel" }, h("div", { class: "empty-state" }, "Choose a session, or start a new one with an agent (the ", h("code", null, "mock"), " agent needs no credentials)."));

  clear(content, messages,
    h("div", { class: "session-layout" },
      h("div", null,
        h("section", { class: "panel" }, h("h2", null, "Start a session"), form),
        h("section", { class: "panel flush" }, h("div", { class: "panel-head" }, h("h2", null, "Sessions"), h("span", { class: "spacer" }), h("button", { type: "button", class: "small", onclick: loadList }, "Refresh")), listHost)),
      detail));
  loadList();
}

function sessionPanel(ctx, id, reloadList) {
  const { key, base, gen, query } = ctx;
  const keepParam = Number(query && query.get("keep"));
  const keep = Number.isInteger(keepParam) && keepParam >= 10 ? Math.min(keepParam, 100000) : TRANSCRIPT_KEEP;
  const sbase = `${ws(key)}/sessions/${encodeURIComponent(id)}`;
  const messages = messageArea();
  const title = h("h2", { class: "break" }, "Session");
  const statusHost = h("span");
  const streamState = h("span", { class: "muted small", role: "status" }, "connecting…");
  const transcript = h("div", { class: "transcript", "aria-label": "Transcript", "aria-live": "polite" }, loading("Loading the transcript…"));
  const prompt = h("textarea", { "aria-label": "Prompt", placeholder: "Ask the agent… (Enter sends, Shift+Enter for a new line)", rows: 2 });
  const sendBtn = h("button", { type: "submit", class: "primary" }, "Send");
  const cancelBtn = h("button", { type: "button", onclick: async () => {
    try { await api("POST", `${sbase}/cancel`); toast("Cancel requested"); } catch (err) { messages.error(err); }
  } }, "Cancel turn");

  const resumeBtn = h("button", { type: "button", hidden: true, onclick: async () => {
    try { await api("POST", `${sbase}/resume`); toast("Session resumed"); refreshSession(); reloadList(); } catch (err) { messages.error(err); }
  } }, "Resume");
  const closeBtn = h("button", { type: "button", onclick: async () => {
    try { await api("POST", `${sbase}/close`); toast("Session closed"); refreshSession(); reloadList(); } catch (err) { messages.error(err); }
  } }, "Close");

  // The model and mode pickers: what the running agent offers; a change takes effect from the next turn.
  const optionPicker = (field, label) => {
    const select = h("select", { "aria-label": label, class: "small", hidden: true });
    select.addEventListener("change", async () => {
      try {
        await api("POST", `${sbase}/${field}`, { json: { [field]: select.value } });
        toast(`${label}: ${select.value}`);
      } catch (err) { messages.error(err); refreshSession(); }
    });
    const show = (offered, current, disabled) => {
      select.hidden = !offered || offered.length === 0;
      select.disabled = !!disabled;
      select.title = disabled ? "The session is closed: resume it to change this" : "";
      if (select.hidden) return;
      clear(select, ...offered.map((o) => h("option", { value: o.id, title: o.description || "" }, `${label}: ${o.name || o.id}`)));
      if (current) select.value = current;
    };
    return { select, show };
  };
  const modelPicker = optionPicker("model", "Model");
  const modePicker = optionPicker("mode", "Mode");

  const refreshSession = async () => {
    try {
      const s = await api("GET", sbase);
      if (!stillHere(gen)) return null;
      clear(title, `${s.agent} `, h("span", { class: "muted small mono" }, s.id));
      const usage = s.usage ? h("span", { class: "muted small", title: "tokens in / out" }, ` ${s.usage.inputTokens} in · ${s.usage.outputTokens} out`) : null;
      clear(statusHost, stateBadge("session", s.status), !s.availableModels && s.model ? h("span", { class: "muted small" }, ` model ${s.model}`) : null, usage);
      const closed = s.status === "closed";
      modelPicker.show(s.availableModels, s.model, closed);
      modePicker.show(s.availableModes, s.mode, closed);
      prompt.disabled = closed; sendBtn.disabled = closed;
      prompt.placeholder = closed ? "This session is closed: resume it to prompt again." : "Ask the agent… (Enter sends, Shift+Enter for a new line)";
      resumeBtn.hidden = !closed; closeBtn.hidden = closed;
      cancelBtn.disabled = s.status !== "running";
      return s;
    } catch (err) {
      if (stillHere(gen)) messages.error(err);
      return null;
    }
  };

  const renderer = transcriptRenderer(transcript, async (permissionId, reply) => {
    await api("POST", `${sbase}/permissions/${encodeURIComponent(permissionId)}`, { json: { reply } });
  }, async (questionId, reply) => {
    await api("POST", `${sbase}/questions/${encodeURIComponent(questionId)}`, { json: reply });
  }, {
    keep,
    // The events before the first one shown, the newest EARLIER_PAGE of them (the "Show earlier" button).
    loadEarlier: async (before) => {
      const after = Math.max(0, before - 1 - EARLIER_PAGE);
      const res = await api("GET", `${sbase}/events`, { query: { after, limit: EARLIER_PAGE } });
      return { from: after + 1, items: (res.items || []).filter((e) => e.seq < before) };
    },
  });

  (async () => {
    const session = await refreshSession();
    // The tail of the stored transcript first (its last `keep` events: older rows would be dropped anyway), then
    // the live stream from the last seq on.
    const lastSeq = session && Number.isFinite(session.lastEventSeq) ? session.lastEventSeq : null;
    let after = lastSeq === null ? 0 : Math.max(0, lastSeq - keep);
    const maxPages = lastSeq === null ? 50 : Math.ceil(keep / 500) + 2;
    try {
      const all = [];
      for (let page = 0; page < maxPages; page++) {
        const res = await api("GET", `${sbase}/events`, { query: { after, limit: 500 } });
        const items = res.items || [];
        all.push(...items);
        if (items.length) after = items[items.length - 1].seq;
        if (!res.nextCursor || items.length === 0) break;
      }
      if (!stillHere(gen)) return;
      clear(transcript);
      renderer.begin(lastSeq === null ? 0 : Math.max(0, lastSeq - keep));
      if (all.length === 0 && after === 0) renderer.empty();
      for (const e of all) renderer.add(e);
      renderer.commit();
      renderer.scroll(true);
      revealOnPhone(panel);
    } catch (err) {
      if (!stillHere(gen)) return;
      clear(transcript, errorBox(err));
      return;
    }
    // Live events are queued and rendered in batches, one per animation frame, with one scroll per batch: a
    // stream of thousands of events a second must not lay the page out once per event.
    const queue = [];
    let head = 0;
    let queuedSeq = after;
    let scheduled = false;
    const schedule = () => {
      if (scheduled) return;
      scheduled = true;
      // A hidden tab gets no animation frames: a timer (throttled, but it fires) keeps the queue from growing.
      if (document.hidden) setTimeout(flush, 200); else requestAnimationFrame(flush);
    };
    const flush = () => {
      scheduled = false;
      if (!stillHere(gen)) return;
      const stick = renderer.atBottom(); // read before the batch changes the DOM: the layout is still clean
      const started = performance.now();
      let turnChanged = false;
      while (head < queue.length) {
        const e = queue[head++];
        renderer.add(e);
        if (STATUS_EVENTS.has(e.type)) turnChanged = true;
        // At most ~12 ms of rendering per frame (none in a hidden tab: nobody waits for a frame there).
        if ((head & 127) === 0 && !document.hidden && performance.now() - started > 12) break;
      }
      if (head >= queue.length) { queue.length = 0; head = 0; } else if (head > 4096) { queue.splice(0, head); head = 0; }
      renderer.commit();
      if (stick) renderer.toBottom();
      if (turnChanged) { refreshSession(); reloadList(); }
      if (queue.length) schedule();
    };
    const stream = sse(`${sbase}/events/stream`, {
      lastEventId: after,
      onOpen: () => { streamState.textContent = "live"; },
      onEvent: ({ data }) => {
        if (!data || typeof data !== "object" || data.seq === undefined) return;
        if (data.seq <= queuedSeq) return;
        queuedSeq = data.seq;
        queue.push(data);
        schedule();
      },
      onError: (err) => { streamState.textContent = `stream interrupted: ${errorText(err)}`; },
    });
    onLeave(() => stream.close());
  })();

  // One prompt in flight at a time (Enter as well as the button). The box is emptied when the prompt goes, so that
  // what is typed meanwhile is kept; a prompt the server refuses comes back into an empty box.
  let sending = false;
  const send = async () => {
    const text = prompt.value.trim();
    if (!text || sending) return;
    sending = true; sendBtn.disabled = true; messages.reset();
    prompt.value = "";
    try {
      await api("POST", `${sbase}/prompt`, { query: { wait: "false" }, json: { content: [{ type: "text", text }] } });
      cancelBtn.disabled = false;
    } catch (err) {
      if (!prompt.value.trim()) prompt.value = text;
      messages.error(err);
    } finally { sending = false; sendBtn.disabled = prompt.disabled; prompt.focus(); }
  };
  prompt.addEventListener("keydown", (ev) => { if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); send(); } });

  const panel = h("section", { class: "panel flush", "aria-label": "Session" },
    h("div", { class: "panel-head" }, title, statusHost, streamState, h("span", { class: "spacer" }),
      modelPicker.select, modePicker.select, cancelBtn, resumeBtn, closeBtn,
      h("button", { type: "button", class: "danger", onclick: async () => {
        if (!await confirmDialog("Delete this session?", "The agent stops and its transcript is destroyed.")) return;
        try { await api("DELETE", sbase); toast("Session deleted"); go(`${base}/sessions`); } catch (err) { messages.error(err); }
      } }, "Delete")),
    h("div", { style: "padding: 0 1rem" }, messages),
    transcript,
    h("form", { class: "prompt-box", onsubmit: (ev) => { ev.preventDefault(); send(); } }, prompt, sendBtn));
  return panel;
}

function textOf(content) {
  if (!content) return "";
  if (Array.isArray(content)) return content.map(textOf).join("");
  if (typeof content === "string") return content;
  if (content.type === "text") return content.text || "";
  if (content.type === "image") return "[image]";
  if (content.type === "resource_link" || content.type === "file") return `[${content.uri || content.path || content.name || "file"}]`;
  if (content.content) return textOf(content.content);
  return content.text || "";
}

/**
 * An input for one field of a question's form (ACP's `requestedSchema`, a flat JSON Schema object), by its type: a
 * list for `enum` (or `oneOf` of `const`s), a checkbox for `boolean`, a number box for `number` / `integer`, else text.
 * `data-field` names the field, `data-kind` says how fieldValue() reads it.
 */
function fieldInput(name, schema) {
  const label = name ? ((schema && schema.title) || name) : "Answer";
  const common = { "aria-label": label, title: (schema && schema.description) || label, "data-field": name || "" };
  const choices = schema && Array.isArray(schema.enum) ? schema.enum.map((v, i) => [v, (schema.enumNames && schema.enumNames[i]) || String(v)])
    : schema && Array.isArray(schema.oneOf) && schema.oneOf.every((o) => o && "const" in o) ? schema.oneOf.map((o) => [o.const, o.title || String(o.const)])
    : null;
  if (choices) {
    const select = h("select", { ...common, class: "grow", "data-kind": "choice" },
      h("option", { value: "" }, `${label}…`), ...choices.map(([v, text], i) => h("option", { value: String(i) }, text)));
    select.choices = choices.map(([v]) => v);
    if (schema.default !== undefined) { const at = select.choices.indexOf(schema.default); if (at >= 0) select.value = String(at); }
    return select;
  }
  const type = schema && schema.type;
  if (type === "boolean") {
    const box = h("input", { ...common, type: "checkbox", "data-kind": "boolean" });
    box.checked = schema.default === true;
    box.wrapper = h("label", { class: "small row center" }, box, ` ${label}`); // what the form shows
    return box;
  }
  if (type === "number" || type === "integer") {
    return h("input", { ...common, class: "grow", type: "number", step: type === "integer" ? "1" : "any", placeholder: label, "data-kind": type,
      min: schema.minimum ?? null, max: schema.maximum ?? null });
  }
  return h("input", { ...common, class: "grow", placeholder: label, "data-kind": "text" });
}

/** The value of a fieldInput() as the form's JSON has it; undefined when left empty. Throws on a number that is not one. */
function fieldValue(input) {
  switch (input.dataset.kind) {
    case "choice": return input.value === "" ? undefined : input.choices[Number(input.value)];
    case "boolean": return input.checked;
    case "number":
    case "integer": {
      if (input.value.trim() === "") return undefined;
      const n = Number(input.value);
      if (!Number.isFinite(n) || (input.dataset.kind === "integer" && !Number.isInteger(n))) throw new Error(`${input.getAttribute("aria-label")}: not ${input.dataset.kind === "integer" ? "a whole number" : "a number"}`);
      return n;
    }
    default: return input.value;
  }
}

/** Shows `value` (an answer given) in a fieldInput(). */
function setFieldValue(input, value, shown) {
  switch (input.dataset.kind) {
    case "choice": { const at = input.choices.findIndex((c) => c === value); input.value = at >= 0 ? String(at) : ""; break; }
    case "boolean": input.checked = value === true; break;
    default: input.value = shown(value);
  }
}

/**
 * Turns transcript events into DOM: chunks join into messages, tool calls update in place. Each row (a direct child
 * of root) remembers the seq of its first event; after commit() only the newest `keep` rows are left, and a line at
 * the top says how many earlier events are not shown (with a button that renders the previous page of them).
 * add() only builds DOM and never reads layout; commit() ends a batch.
 */
function transcriptRenderer(root, replyPermission, answerQuestion, { keep = Infinity, loadEarlier = null } = {}) {
  let current = null; // the message that chunks join: {kind, el, parts: [text not yet in the DOM]}
  const tools = new Map();
  const permissions = new Map();
  const questions = new Map();
  // Replies whose card is not here (it was pruned, or is before the first event shown): applied to the card when
  // "Show earlier" renders it again.
  const orphanReplies = new Map();
  const MAX_ORPHANS = 1000;
  const orphan = (key, e) => {
    orphanReplies.delete(key);
    orphanReplies.set(key, e);
    if (orphanReplies.size > MAX_ORPHANS) orphanReplies.delete(orphanReplies.keys().next().value);
  };
  const state = { lastSeq: 0, seq: 0, firstSeq: 1, keep };
  let emptyNote = null;
  let earlier = null; // the "N earlier events not shown" line, root's first child while there are such events

  // Chunks of a message arrive by the thousand: their text goes into the DOM once a batch, as one text node.
  const flushText = () => {
    if (!current || current.parts.length === 0) return;
    const el = current.el;
    el.appendChild(document.createTextNode(current.parts.join("")));
    current.parts.length = 0;
    if (el.childNodes.length > 64) el.textContent = el.textContent; // a long stream: back to one node now and then
  };
  const endMessage = () => { flushText(); current = null; };
  const push = (el) => {
    if (emptyNote) { emptyNote.remove(); emptyNote = null; }
    el.dataset.seq = String(state.seq);
    root.appendChild(el);
    return el;
  };
  const note = (text) => { endMessage(); push(h("div", { class: "event-note" }, text)); };
  const rowCount = () => root.childElementCount - (earlier ? 1 : 0);
  const firstRow = () => (earlier ? earlier.nextElementSibling : root.firstElementChild);

  // A removed row's card is forgotten too (an update for it later makes a new card, as for one never seen).
  const forget = (row) => {
    const { toolCallId, permissionId, questionId } = row.dataset;
    if (toolCallId && tools.get(toolCallId)?.card === row) tools.delete(toolCallId);
    if (permissionId && permissions.get(permissionId)?.card === row) permissions.delete(permissionId);
    if (questionId && questions.get(questionId)?.card === row) questions.delete(questionId);
  };
  const showEarlier = () => {
    const hidden = state.firstSeq - 1;
    if (hidden <= 0) { if (earlier) { earlier.remove(); earlier = null; } return; }
    if (!earlier) {
      const text = h("span");
      const button = loadEarlier ? h("button", { type: "button", class: "small", onclick: () => prependEarlier(button) }, "Show earlier") : null;
      earlier = h("div", { class: "event-note transcript-earlier" }, text, button);
      earlier.text = text;
    }
    if (root.firstChild !== earlier) root.insertBefore(earlier, root.firstChild);
    earlier.text.textContent = `${hidden.toLocaleString("en-US")} earlier event${hidden === 1 ? "" : "s"} not shown `;
  };
  const prune = () => {
    let n = rowCount() - state.keep;
    if (n <= 0) return;
    for (; n > 0; n--) {
      const row = firstRow();
      if (!row || row === current?.el) break;
      forget(row);
      row.remove();
    }
    const first = firstRow();
    state.firstSeq = first && first.dataset.seq ? Number(first.dataset.seq) : state.lastSeq + 1;
    showEarlier();
  };
  // "Show earlier": the previous page of events, rendered apart (as a transcript of its own) and put on top, the
  // scroll position kept. The rows kept grow by as many: the reader asked for them.
  const prependEarlier = async (button) => {
    button.disabled = true;
    try {
      const { from, items } = await loadEarlier(state.firstSeq);
      const box = document.createElement("div");
      const sub = transcriptRenderer(box, replyPermission, answerQuestion);
      for (const e of items) sub.add(e);
      // Replies that came while their cards were not shown settle them now; the cards are this renderer's from now on.
      for (const [k, e] of [...orphanReplies]) if (sub.settle(e)) orphanReplies.delete(k);
      const adopted = sub.cards();
      for (const [map, theirs] of [[tools, adopted.tools], [permissions, adopted.permissions], [questions, adopted.questions]]) {
        for (const [id, entry] of theirs) if (!map.has(id)) map.set(id, entry);
      }
      sub.commit();
      const rows = [...box.children];
      const fromBottom = root.scrollHeight - root.scrollTop;
      const first = firstRow();
      for (const row of rows) root.insertBefore(row, first);
      state.keep += rows.length;
      state.firstSeq = Math.min(state.firstSeq, Math.max(1, from));
      showEarlier();
      root.scrollTop = root.scrollHeight - fromBottom;
    } catch (err) {
      toast(errorText(err), "error");
    } finally { button.disabled = false; }
  };

  const toolCard = (update) => {
    const statusEl = h("span");
    const titleEl = h("span");
    const card = h("div", { class: "card tool", dataset: { toolCallId: update.toolCallId || "" } },
      h("div", { class: "card-title" }, h("span", { class: "icon", "aria-hidden": "true" }, "⚙"), titleEl, update.kind ? h("span", { class: "badge" }, update.kind) : null, statusEl));
    const entry = { card, statusEl, titleEl };
    setTool(entry, update);
    return entry;
  };
  const setTool = (entry, update) => {
    if (update.title) entry.titleEl.textContent = update.title;
    else if (!entry.titleEl.textContent) entry.titleEl.textContent = "Tool call";
    if (update.status) clear(entry.statusEl, stateBadge("tool", update.status));
    const text = textOf(update.content);
    if (text) {
      let body = entry.card.querySelector(".card-body");
      if (!body) body = entry.card.appendChild(h("pre", { class: "card-body mono small", style: "white-space: pre-wrap; margin: .4rem 0 0" }));
      body.textContent = text.slice(0, 4000);
    }
  };

  // A permission request: a button per reply its options allow. Its permission_reply (sent from here, from another
  // client, by the policy or the server, before or after this page loaded) settles it: the buttons off, the chosen
  // one marked, the outcome said.
  const permissionCard = (p) => {
    const options = (p.options && p.options.length) ? p.options : [{ kind: "allow_once" }, { kind: "allow_always" }, { kind: "reject_once" }];
    const outcome = h("span", { class: "muted small outcome", role: "status" });
    const buttons = [];
    const seen = new Set();
    let settled = false;
    let card = null;
    for (const o of options) {
      const reply = REPLY_FOR_KIND[o.kind];
      if (!reply || seen.has(reply)) continue;
      seen.add(reply);
      const btn = h("button", { type: "button", class: reply === "reject" ? "small danger" : reply === "once" ? "small primary" : "small", dataset: { reply } }, LABEL_FOR_REPLY[reply]);
      btn.addEventListener("click", async () => {
        buttons.forEach((b) => { b.disabled = true; });
        outcome.textContent = "Sending…";
        try {
          await replyPermission(p.permissionId, reply);
          if (!settled) { outcome.textContent = `Answered: ${LABEL_FOR_REPLY[reply]}`; btn.classList.add("chosen"); }
        } catch (err) {
          if (!settled) { outcome.textContent = errorText(err); buttons.forEach((b) => { b.disabled = false; }); }
        }
      });
      buttons.push(btn);
    }
    const settle = (r) => {
      settled = true;
      // `reply` is once/always/reject, or null when it was cancelled; an older record may name only the option.
      const kind = r.optionId ? (options.find((o) => o.optionId === r.optionId) || {}).kind : null;
      const reply = r.reply || REPLY_FOR_KIND[kind] || null;
      const cancelled = !reply || r.outcome === "cancelled";
      buttons.forEach((b) => { b.disabled = true; b.classList.toggle("chosen", !cancelled && b.dataset.reply === reply); });
      outcome.textContent = cancelled ? `Cancelled${answeredBy(r.by)}`
        : r.by === "timeout" ? `Not answered in time: ${LABEL_FOR_REPLY[reply] || reply}`
        : `Answered: ${LABEL_FOR_REPLY[reply] || reply}${answeredBy(r.by)}`;
      card.classList.add("answered");
      card.dataset.outcome = cancelled ? "cancelled" : reply;
    };
    const tc = p.toolCall || {};
    card = h("div", { class: "card permission", dataset: { permissionId: p.permissionId || "" } },
      h("div", { class: "card-title" }, h("span", { class: "icon", "aria-hidden": "true" }, "⚠"), "Permission requested: ", h("span", null, tc.title || tc.kind || "a tool call")),
      h("div", { class: "card-body row center" }, buttons, outcome));
    permissions.set(p.permissionId, { card, settle });
    return card;
  };

  // A question (ACP form elicitation): one input per field of its form, or one for a bare answer. Its question_reply
  // settles it the same way: the inputs off and filled with what was answered, or declined, cancelled, timed out.
  const questionCard = (p) => {
    const qid = p.questionId || p.id;
    const props = (p.requestedSchema && p.requestedSchema.properties) || {};
    const names = Object.keys(props);
    const inputs = (names.length ? names : [null]).map((name) => fieldInput(name, name ? props[name] : null));
    const outcome = h("span", { class: "muted small outcome", role: "status" });
    const btn = h("button", { type: "submit", class: "small primary" }, "Answer");
    const decline = h("button", { type: "button", class: "small" }, "Decline");
    let settled = false;
    let card = null;
    const lock = () => { inputs.forEach((i) => { i.disabled = true; }); btn.disabled = true; decline.disabled = true; };
    const send = async (reply) => {
      btn.disabled = true; decline.disabled = true;
      outcome.textContent = "Sending…";
      try {
        await answerQuestion(qid, reply);
        if (!settled) { lock(); outcome.textContent = reply.action === "decline" ? "Declined" : "Answered"; }
      } catch (err) {
        if (!settled) { outcome.textContent = errorText(err); btn.disabled = false; decline.disabled = false; }
      }
    };
    const shown = (v) => (v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v));
    const settle = (r) => {
      settled = true;
      lock();
      btn.hidden = true; decline.hidden = true;
      let text;
      let state = r.action || "answered";
      if (r.action === "accept" || (!r.action && r.content !== undefined)) {
        state = "accept";
        const content = r.content;
        // The answer in its inputs: an object of the form's fields, or a bare value for a form of one (or none).
        const fields = content && typeof content === "object" && !Array.isArray(content) ? content : null;
        const pairs = [];
        inputs.forEach((i) => {
          const name = i.dataset.field;
          setFieldValue(i, fields && name ? fields[name] : inputs.length === 1 ? content : undefined, shown);
        });
        if (fields) for (const [k, v] of Object.entries(fields)) pairs.push([props[k]?.title || k, shown(v)]);
        text = content === undefined ? "Answered"
          : fields && pairs.length > 1 ? `Answered: ${pairs.map(([k, v]) => `${k}: ${v || "(empty)"}`).join(" · ")}`
          : `Answered: ${(fields ? (pairs[0] || [])[1] : shown(content)) || "(empty)"}`;
      } else if (r.action === "decline") {
        text = "Declined";
      } else if (r.by === "timeout") {
        state = "timeout";
        text = "Timed out: not answered in time";
      } else {
        text = `Cancelled${answeredBy(r.by)}`;
      }
      if (state !== "accept") inputs.forEach((i) => { i.placeholder = "(not answered)"; });
      outcome.textContent = text;
      card.classList.add("answered");
      card.dataset.outcome = state;
    };
    decline.addEventListener("click", () => send({ action: "decline" }));
    card = h("div", { class: "card permission question", dataset: { questionId: qid || "" } },
      h("div", { class: "card-title" }, "? ", p.message || "The agent asks a question"),
      h("form", { class: "card-body row center", onsubmit: (ev) => {
        ev.preventDefault();
        if (settled) return;
        let answer;
        try {
          answer = names.length
            ? Object.fromEntries(inputs.map((i) => [i.dataset.field, fieldValue(i)]).filter(([, v]) => v !== undefined))
            : fieldValue(inputs[0]) ?? "";
        } catch (err) { outcome.textContent = err.message; return; }
        send({ answer });
      } }, ...inputs.map((i) => i.wrapper || i), btn, decline, outcome));
    questions.set(qid, { card, settle });
    return card;
  };

  const atBottom = () => root.scrollHeight - root.scrollTop - root.clientHeight < 160;
  return {
    get lastSeq() { return state.lastSeq; },
    /** Settles the card a permission_reply or question_reply event is for, when it is here; whether it was. */
    settle(e) {
      const p = e.payload || {};
      const entry = e.type === "permission_reply" ? permissions.get(p.permissionId) : e.type === "question_reply" ? questions.get(p.questionId) : null;
      if (entry) entry.settle(p);
      return Boolean(entry);
    },
    /** The cards this renderer made, by id (for a renderer that takes its rows over). */
    cards() { return { tools, permissions, questions }; },
    /** The transcript starts after this seq: the events up to it are counted as not shown. */
    begin(after) { state.firstSeq = after + 1; state.lastSeq = Math.max(state.lastSeq, after); showEarlier(); },
    empty() { emptyNote = root.appendChild(h("div", { class: "event-note empty-note" }, "No events yet. Send a prompt below.")); },
    atBottom,
    toBottom() { root.scrollTop = root.scrollHeight; },
    scroll(force) { if (force || atBottom()) root.scrollTop = root.scrollHeight; },
    /** Ends a batch of add(): the pending text into the DOM, the oldest rows beyond `keep` out. */
    commit() { flushText(); prune(); },
    add(e) {
      if (typeof e.seq === "number") { state.lastSeq = Math.max(state.lastSeq, e.seq); state.seq = e.seq; }
      const payload = e.payload || {};
      const update = payload.update || payload;
      switch (e.type) {
        case "prompt": {
          endMessage();
          const text = textOf(payload.prompt || payload.content);
          push(h("div", { class: "msg user" }, text || "(empty prompt)"));
          break;
        }
        case "user_message_chunk": {
          if (!current || current.kind !== "user") { endMessage(); current = { kind: "user", el: push(h("div", { class: "msg user" })), parts: [] }; }
          current.parts.push(textOf(update.content));
          break;
        }
        case "agent_message_chunk":
        case "agent_thought_chunk": {
          const kind = e.type === "agent_message_chunk" ? "agent" : "thought";
          let text = textOf(update.content);
          if (!current || current.kind !== kind) {
            endMessage();
            current = { kind, el: push(h("div", { class: `msg ${kind}` })), parts: [] };
            text = text.replace(/^\s+/, "");
          }
          current.parts.push(text);
          break;
        }
        case "tool_call": {
          endMessage();
          const entry = toolCard(update);
          if (update.toolCallId) tools.set(update.toolCallId, entry);
          push(entry.card);
          break;
        }
        case "tool_call_update": {
          const entry = tools.get(update.toolCallId);
          if (entry) setTool(entry, update);
          else { endMessage(); const ne = toolCard(update); tools.set(update.toolCallId, ne); push(ne.card); }
          break;
        }
        case "plan": {
          endMessage();
          const entries = update.entries || [];
          push(h("div", { class: "card plan" },
            h("div", { class: "card-title" }, h("span", { class: "icon", "aria-hidden": "true" }, "☰"), "Plan"),
            h("ol", { class: "plan-list" }, entries.map((en) => h("li", { class: typeof en.status === "string" && /^[a-z_]+$/.test(en.status) ? en.status : "" }, en.content || "", " ", en.status ? stateBadge("plan", en.status) : null)))));
          break;
        }
        case "permission_request": {
          endMessage();
          push(permissionCard(payload));
          break;
        }
        case "permission_reply": {
          const p = permissions.get(payload.permissionId);
          if (p) p.settle(payload);
          else if (payload.permissionId) orphan(`p:${payload.permissionId}`, e);
          break;
        }
        case "question": {
          endMessage();
          push(questionCard(payload));
          break;
        }
        case "question_reply": {
          const q = questions.get(payload.questionId);
          if (q) q.settle(payload);
          else if (payload.questionId) orphan(`q:${payload.questionId}`, e);
          break;
        }
        case "question_timeout": {
          // Its card says so (with the reply that follows); a line only when the card is not shown.
          if (!questions.get(payload.questionId)) note("The question timed out unanswered");
          break;
        }
        case "model_changed":
        case "mode_changed": {
          note(`${e.type === "model_changed" ? "Model" : "Mode"} set to ${payload.model || payload.mode} (from the next turn)`);
          break;
        }
        case "turn_end": {
          note(`Turn ended · ${payload.stopReason || "done"}`);
          break;
        }
        case "error": {
          endMessage();
          push(h("div", { class: "card error", role: "alert" }, h("strong", null, "Error: "), payload.message || payload.detail || payload.error || JSON.stringify(payload)));
          break;
        }
        case "agent_started": note(payload.method === "load" ? "Agent restarted (session reloaded)" : "Agent started"); break;
        case "close": note("Session closed"); break;
        case "resume": note("Session resumed"); break;
        case "cancel": note("Cancel requested"); break;
        case "agent_exited": note(`Agent exited${payload.exitCode !== undefined ? ` (code ${payload.exitCode})` : ""}`); break;
        case "available_commands_update": case "current_mode_update": case "usage_update": break;
        default: note(e.type || "event");
      }
    },
  };
}
