// The Desktop tab: the workspace's X display, live through noVNC (vendored) over the server's WebSocket relay
// (/v1/workspaces/KEY/desktop/stream), with buttons to start and stop it, open an xterm, and take a screenshot.

import { h, clear, messageArea, api, ApiError, ws, auth, toast } from "./lib.js";
import { onLeave, stillHere } from "./app.js";

export function renderDesktop(ctx) {
  const { key, gen, content } = ctx;
  const messages = messageArea();
  const status = h("span", { class: "muted small", role: "status" }, "Looking for a desktop…");
  const screen = h("div", { class: "desktop-screen", "aria-label": "The workspace's desktop (live)" });
  const shot = h("div", { class: "desktop-shot" });
  let rfb = null;

  const disconnect = () => { if (rfb) { try { rfb.disconnect(); } catch { /* closed */ } rfb = null; } };
  onLeave(disconnect);

  const connect = async () => {
    disconnect();
    let RFB;
    try {
      RFB = (await import("./vendor/novnc/core/rfb.js")).default;
    } catch (err) {
      messages.error(new Error(`The VNC viewer (vendor/novnc) did not load: ${err.message}`));
      return;
    }
    if (!stillHere(gen)) return;
    clear(screen);
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${proto}//${location.host}${ws(key)}/desktop/stream?access_token=${encodeURIComponent(auth.token || "")}`;
    rfb = new RFB(screen, url, { wsProtocols: ["binary"] });
    rfb.scaleViewport = true;
    rfb.background = "#0f1322";
    rfb.addEventListener("connect", () => { status.textContent = "Live"; screen.dataset.state = "connected"; });
    rfb.addEventListener("disconnect", (ev) => {
      screen.dataset.state = "disconnected";
      status.textContent = ev.detail && ev.detail.clean ? "Disconnected" : "The live view was lost";
    });
  };

  const refresh = async () => {
    try {
      const desktop = await api("GET", `${ws(key)}/desktop`);
      if (!stillHere(gen)) return;
      status.textContent = `Display ${desktop.display} · ${desktop.width}×${desktop.height} · connecting…`;
      startButton.disabled = true;
      stopButton.disabled = false;
      connect();
    } catch (err) {
      if (!stillHere(gen)) return;
      startButton.disabled = false;
      stopButton.disabled = true;
      if (err instanceof ApiError && err.status === 404 && /desktop/.test(err.message || "") ) {
        status.textContent = "No desktop";
        clear(screen, h("p", { class: "muted desktop-empty" }, "This workspace has no desktop. Start one: an X display (1280×800) with a window manager, inside the workspace's sandbox."));
      } else {
        status.textContent = "No desktop";
        messages.error(err);
      }
    }
  };

  const start = async () => {
    messages.reset();
    status.textContent = "Starting the display…";
    try {
      await api("POST", `${ws(key)}/desktop`, { json: {} });
      await refresh();
    } catch (err) { messages.error(err); status.textContent = "No desktop"; }
  };
  const stop = async () => {
    messages.reset();
    disconnect();
    try {
      await api("DELETE", `${ws(key)}/desktop`);
      toast("Desktop stopped");
      await refresh();
    } catch (err) { messages.error(err); }
  };
  const xterm = async () => {
    messages.reset();
    try {
      await api("POST", `${ws(key)}/processes`, { json: { command: "xterm" } });
      toast("xterm started");
    } catch (err) { messages.error(err); }
  };
  const screenshot = async () => {
    messages.reset();
    try {
      const res = await api("GET", `${ws(key)}/desktop/screenshot`, { raw: true });
      const url = URL.createObjectURL(await res.blob());
      clear(shot, h("figure", null, h("img", { src: url, alt: "A screenshot of the desktop", class: "desktop-shot-img" }),
        h("figcaption", { class: "muted small" }, "Screenshot (PNG) · ", h("a", { href: url, download: `${key}-desktop.png` }, "download"))));
    } catch (err) { messages.error(err); }
  };

  const startButton = h("button", { type: "button", class: "small", onclick: start }, "Start desktop");
  const stopButton = h("button", { type: "button", class: "small danger", onclick: stop, disabled: true }, "Stop desktop");
  clear(content,
    messages,
    h("section", { class: "panel flush" },
      h("div", { class: "panel-head" }, h("h2", null, "Desktop"), status, h("span", { class: "spacer" }),
        startButton,
        h("button", { type: "button", class: "small", onclick: xterm }, "Open xterm"),
        h("button", { type: "button", class: "small", onclick: screenshot }, "Screenshot"),
        h("button", { type: "button", class: "small", onclick: () => refresh() }, "Reconnect"),
        stopButton),
      h("div", { class: "panel-body" }, screen, shot)));
  refresh();
}
