#!/usr/bin/env python3
"""Browser test of the AgentBox Inspector (the web UI at /ui/).

Drives a real Chromium with Playwright against a running AgentBox server:

    python3 Tests/Inspector/inspector_test.py --url http://127.0.0.1:18181 --token TOKEN \
        [--chromium /usr/bin/chromium] [--screenshots DIR] [--headed]

Needs `pip install playwright==1.65.2` (no `playwright install`: it uses the system Chromium).
Exits 0 only when every step passed. On a failure it saves a screenshot (failure-*.png in the
screenshots folder, or the temp folder) and prints the page's console errors. Any uncaught
JavaScript error in the page (`pageerror`) fails the test.
"""

import argparse
import os
import random
import re
import sys
import tempfile
import time
import traceback

from playwright.sync_api import expect, sync_playwright

TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)


class Run:
    def __init__(self, args):
        self.args = args
        self.page_errors = []
        self.console_errors = []
        self.failed = False
        self.step_no = 0
        self.shot_dir = args.screenshots
        if self.shot_dir:
            os.makedirs(self.shot_dir, exist_ok=True)

    def watch(self, page, label):
        page.on("pageerror", lambda exc: self.page_errors.append(f"[{label}] {exc}"))
        page.on("console", lambda msg: self.console_errors.append(f"[{label}] {msg.type}: {msg.text}")
                if msg.type in ("error", "warning") else None)

    def shot(self, page, name):
        if self.shot_dir:
            # toasts of earlier steps would cover the page
            page.evaluate("document.querySelector('.toast-host')?.replaceChildren()")
            page.screenshot(path=os.path.join(self.shot_dir, f"{name}.png"))

    def step(self, name, page, fn):
        """Runs one step; returns False (and records why) when it failed."""
        if self.failed:
            print(f"SKIP  {name}")
            return False
        self.step_no += 1
        started = time.time()
        print(f"....  {self.step_no:2d}. {name}", flush=True)
        before = len(self.page_errors)
        try:
            fn()
            if len(self.page_errors) > before:
                raise AssertionError("JavaScript error in the page: " + " | ".join(self.page_errors[before:]))
        except Exception as exc:  # noqa: BLE001 — report every failure the same way
            self.failed = True
            print(f"FAIL  {self.step_no:2d}. {name} ({time.time() - started:.1f} s)")
            print("      " + "".join(traceback.format_exception_only(type(exc), exc)).strip().replace("\n", "\n      "))
            folder = self.shot_dir or tempfile.gettempdir()
            path = os.path.join(folder, f"failure-{self.step_no:02d}.png")
            try:
                page.screenshot(path=path, full_page=True)
                print(f"      screenshot: {path}")
            except Exception as shot_exc:  # noqa: BLE001
                print(f"      (no screenshot: {shot_exc})")
            if self.console_errors:
                print("      console errors and warnings:")
                for line in self.console_errors[-30:]:
                    print(f"        {line}")
            return False
        print(f"PASS  {self.step_no:2d}. {name} ({time.time() - started:.1f} s)", flush=True)
        return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the server's base URL, e.g. http://127.0.0.1:18181")
    parser.add_argument("--token", required=True, help="an admin token of that server")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium binary")
    parser.add_argument("--screenshots", help="save screenshots of every page here")
    parser.add_argument("--headed", action="store_true", help="show the browser")
    args = parser.parse_args()

    base = args.url.rstrip("/")
    ui = f"{base}/ui/"
    run = Run(args)
    rnd = random.Random()
    key = f"ui-test-{int(time.time())}-{rnd.randrange(10_000):04d}"
    quoted_key = key  # keys of [A-Za-z0-9._:-] need no escaping in a URL fragment
    file_name = "hello-inspector.txt"
    file_text = f"Hello from the Inspector test\nline two {rnd.randrange(10**6)}\n"
    a, b = rnd.randrange(1000, 9999), rnd.randrange(1000, 9999)
    marker = f"ui-marker-{a + b}"
    preview_port = rnd.randrange(20000, 30000)
    secret_label = {"label": f"inspector-test-{rnd.randrange(10**6)}"}
    shared = {}  # what one step leaves for a later one (the session's id)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=not args.headed,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        run.watch(page, "desktop")

        def goto_tab(tab):
            page.goto(f"{ui}#/w/{quoted_key}/{tab}")

        # ---- login ----
        def login():
            page.goto(ui)
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            run.shot(page, "login")
            page.get_by_label("API token").fill("not-the-token")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("alert")).to_contain_text("refused")
            page.get_by_label("API token").fill(args.token)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", name="Workspaces", exact=True)).to_be_visible()
        run.step("log in with the token (a wrong token is refused first)", page, login)

        # ---- errors show the server's problem detail ----
        def error_states():
            page.get_by_label("Workspace key").fill("bad key!")
            page.get_by_role("button", name="Create workspace").click()
            expect(page.get_by_role("alert")).to_contain_text("a workspace key may hold only")
            page.goto(f"{ui}#/w/no-such-workspace-{rnd.randrange(10**6)}/files")
            expect(page.get_by_role("alert").first).to_contain_text("no workspace")
        run.step("Error states: a bad key and an unknown workspace show the server's detail", page, error_states)

        # ---- workspace ----
        def create_workspace():
            page.goto(f"{ui}#/workspaces")
            page.get_by_label("Workspace key").fill(key)
            page.get_by_text("Limits and network").click()
            page.get_by_label("Memory (MB)").fill("1024")
            page.get_by_role("button", name="Create workspace").click()
            expect(page.get_by_role("heading", name=key, exact=True)).to_be_visible()
            expect(page.get_by_role("link", name="Files", exact=True)).to_be_visible()
            page.goto(f"{ui}#/workspaces")
            row = page.locator("tr", has=page.get_by_role("link", name=key, exact=True))
            expect(row).to_be_visible()
            expect(row).to_contain_text("1024 MB")
            run.shot(page, "workspaces")
        run.step(f"create the workspace {key} (1024 MB memory) and see it listed", page, create_workspace)

        # ---- files ----
        def files_write():
            goto_tab("files")
            expect(page.get_by_label("Root folder")).to_have_value("/workspace")
            page.get_by_role("button", name="New file").click()
            page.get_by_label("File name").fill(file_name)
            page.get_by_role("button", name="Create", exact=True).click()
            editor = page.get_by_label("File content")
            expect(editor).to_be_visible()
            editor.fill(file_text)
            page.get_by_role("button", name="Save", exact=True).click()
            expect(page.get_by_text(re.compile(r"^Saved "))).to_be_visible()
            expect(page.get_by_role("link", name=file_name)).to_be_visible()
        run.step("Files: create a file, type its text and save it", page, files_write)

        def files_read():
            page.get_by_role("button", name="Close", exact=True).click()
            expect(page.get_by_label("File content")).to_have_count(0)
            page.reload()
            page.get_by_role("link", name=file_name).click()
            expect(page.get_by_label("File content")).to_have_value(file_text)
            run.shot(page, "files")
        run.step("Files: open the saved file again and see its text", page, files_read)

        def files_more():
            page.get_by_role("button", name="New folder").click()
            page.get_by_label("Folder name").fill("made-by-ui")
            page.get_by_role("button", name="Create", exact=True).click()
            expect(page.locator("tr[data-name='made-by-ui']")).to_be_visible()
            payload = f"uploaded {rnd.randrange(10**9)}\n".encode()
            page.get_by_label("Upload files").set_input_files(files=[{"name": "upload.txt", "mimeType": "text/plain", "buffer": payload}])
            row = page.locator("tr[data-name='upload.txt']")
            expect(row).to_be_visible()
            with page.expect_download() as info:
                row.get_by_role("button", name="Download").click()
            download = info.value
            assert download.suggested_filename == "upload.txt", download.suggested_filename
            with open(download.path(), "rb") as f:
                got = f.read()
            assert got == payload, f"downloaded {got!r}, uploaded {payload!r}"
            row.get_by_role("button", name="Rename upload.txt").click()
            page.get_by_label("New name").fill("renamed.txt")
            page.get_by_role("dialog").get_by_role("button", name="Rename").click()
            expect(row).to_have_count(0)
            row = page.locator("tr[data-name='renamed.txt']")
            expect(row).to_be_visible()
            row.get_by_role("button", name="Delete renamed.txt").click()
            page.get_by_role("dialog").get_by_role("button", name="Delete").click()
            expect(row).to_have_count(0)
            page.locator("tr[data-name='made-by-ui']").get_by_role("link").click()
            expect(page.get_by_text("This directory is empty.")).to_be_visible()
        run.step("Files: make a folder, upload a file, download it back, rename it, delete it", page, files_more)

        # ---- terminal ----
        def terminal():
            goto_tab("terminal")
            expect(page.get_by_text(re.compile(r"^Connected"))).to_be_visible()
            rows = page.locator(".xterm-rows")
            expect(rows).to_contain_text(re.compile(r"[#$] ?$|[#$]", re.M))  # a prompt
            page.locator(".xterm").click()
            page.keyboard.type(f"echo ui-marker-$(({a}+{b}))")
            page.keyboard.press("Enter")
            expect(rows).to_contain_text(marker)
            run.shot(page, "terminal")
        run.step(f"Terminal: type an echo and see {marker}", page, terminal)

        # ---- desktop ----
        def desktop():
            goto_tab("desktop")
            expect(page.get_by_role("button", name="Start desktop")).to_be_enabled()
            page.get_by_role("button", name="Start desktop").click()
            expect(page.get_by_role("status").filter(has_text=re.compile("^Live$"))).to_be_visible()
            auth = {"Authorization": f"Bearer {args.token}"}
            res = page.request.post(f"{base}/v1/workspaces/{key}/processes", headers=auth,
                                    data={"command": "xterm", "args": ["-geometry", "60x10+100+100", "-T", "viewer-xterm"]})
            assert res.ok, f"POST processes: {res.status} {res.text()}"
            window = None
            # Deadlines, not counts: on a loaded CI machine an xterm takes many seconds to map its window.
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                items = page.request.get(f"{base}/v1/workspaces/{key}/desktop/windows", headers=auth).json()["items"]
                window = next((w for w in items if w["title"] == "viewer-xterm"), None)
                if window:
                    break
                time.sleep(0.1)
            assert window, "the xterm's window did not appear"
            # The viewer's input reaches the display: a click on the xterm in the canvas (scaled), then keys.
            canvas = page.locator(".desktop-screen canvas")
            expect(canvas).to_be_visible()
            box = canvas.bounding_box()
            scale = box["width"] / 1280
            time.sleep(0.5)
            page.mouse.click(box["x"] + (window["x"] + window["width"] / 2) * scale, box["y"] + (window["y"] + window["height"] / 2) * scale)
            page.keyboard.type(f"echo viewer-{a} > /tmp/viewer")
            page.keyboard.press("Enter")
            typed = ""
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                res = page.request.post(f"{base}/v1/workspaces/{key}/exec", headers=auth, data={"command": "cat /tmp/viewer 2>/dev/null"})
                typed = res.json()["stdout"]
                if typed:
                    break
                time.sleep(0.1)
            assert typed == f"viewer-{a}\n", f"the viewer's keys reached the xterm: {typed!r}"
            time.sleep(0.5)
            run.shot(page, "desktop")
            page.get_by_role("button", name="Screenshot").click()
            expect(page.get_by_role("img", name="A screenshot of the desktop")).to_be_visible()
            page.get_by_role("button", name="Stop desktop").click()
            expect(page.get_by_text("This workspace has no desktop.")).to_be_visible()
        run.step("Desktop: start it, see it live (noVNC), type into an xterm through the viewer, screenshot, stop", page, desktop)

        # ---- sessions ----
        def sessions():
            goto_tab("sessions")
            agent = page.get_by_label("Agent")
            expect(agent.locator("option[value=mock]")).to_have_count(1)
            agent.select_option("mock")
            page.get_by_role("button", name="New session").click()
            expect(page.get_by_text("live", exact=True)).to_be_visible()
            shared["sid"] = re.search(r"/sessions/(ses_[A-Za-z0-9]+)", page.url).group(1)
            prompt = page.get_by_label("Prompt")
            prompt.fill("hello permission please")
            page.get_by_role("button", name="Send", exact=True).click()
            transcript = page.get_by_label("Transcript")
            expect(transcript.locator(".msg.user")).to_contain_text("hello permission please")
            expect(transcript.locator(".msg.agent").first).to_contain_text("hello permission please")
            allow = transcript.get_by_role("button", name="Allow once")
            expect(allow).to_be_visible()
            allow.click()
            expect(transcript).to_contain_text("permission: approved")
            expect(transcript).to_contain_text("Answered: Allow once")
            expect(transcript).to_contain_text("Turn ended")
            prompt.fill("now a plan and a tool")
            prompt.press("Enter")
            expect(transcript.locator(".card.plan")).to_be_visible()
            expect(transcript.locator(".card.tool").last).to_contain_text("completed")
            # As a person would, the next prompt waits for this turn's end (one sent while a turn runs is refused).
            expect(transcript.locator(".event-note", has_text="Turn ended")).to_have_count(2)
            # The agent's question, answered in its card; then the mode picker, from the next turn on.
            prompt.fill("a question for you")
            prompt.press("Enter")
            name = transcript.get_by_label("Name")
            expect(name).to_be_visible()
            name.fill("Ada")
            transcript.get_by_role("button", name="Answer", exact=True).click()
            expect(transcript).to_contain_text("answer: Ada")
            expect(transcript.locator(".card.question")).to_contain_text("Answered")
            mode = page.get_by_label("Mode", exact=True)
            expect(mode).to_be_visible()
            mode.select_option("plan")
            expect(transcript).to_contain_text("Mode set to plan")
            expect(transcript.locator(".event-note", has_text="Turn ended")).to_have_count(3)
            prompt.fill("whoami")
            prompt.press("Enter")
            expect(transcript.locator(".msg.agent").last).to_contain_text("mode: plan")
            run.shot(page, "sessions")
            session = page.get_by_label("Session", exact=True)
            session.get_by_role("button", name="Close", exact=True).click()
            expect(session.locator(".panel-head .badge").first).to_have_text("closed")
            expect(prompt).to_be_disabled()
            session.get_by_role("button", name="Resume").click()
            expect(prompt).to_be_enabled()
            prompt.fill("back again")
            prompt.press("Enter")
            expect(transcript.locator(".msg.agent").last).to_contain_text("back again")
        run.step("Sessions: mock agent echoes a prompt, asks permission (Allow once → approved), asks a question (answered), mode set; close and resume", page, sessions)

        # ---- answered cards show their answers, after a reload too; the status follows the session ----
        def answered_cards():
            sid = shared["sid"]
            auth = {"Authorization": f"Bearer {args.token}"}
            sbase = f"{base}/v1/workspaces/{key}/sessions/{sid}"
            page.goto(f"{ui}#/w/{quoted_key}/sessions/{sid}")
            page.reload()
            transcript = page.get_by_label("Transcript")
            expect(page.get_by_text("live", exact=True)).to_be_visible()
            # The question and the permission answered in the previous step, read back from the transcript.
            asked = transcript.locator(".card.question").first
            expect(asked).to_have_attribute("data-outcome", "accept")
            expect(asked.locator(".outcome")).to_have_text("Answered: Ada")
            expect(asked.get_by_label("Name")).to_have_value("Ada")
            expect(asked.get_by_label("Name")).to_be_disabled()
            expect(asked.get_by_role("button", name="Answer", exact=True)).to_be_hidden()
            permission = transcript.locator(".card.permission:not(.question)").first
            expect(permission.locator(".outcome")).to_have_text("Answered: Allow once")
            expect(permission.get_by_role("button", name="Allow once")).to_have_class(re.compile(r"\bchosen\b"))
            for name in ("Allow once", "Always", "Reject"):
                expect(permission.get_by_role("button", name=name, exact=True)).to_be_disabled()
            turns = transcript.locator(".event-note", has_text="Turn ended")
            cards = transcript.locator(".card.question")

            # Questions answered by another client (the API) while the page is open: the card follows.
            def ask(text):
                n, t = cards.count(), turns.count()
                res = page.request.post(f"{sbase}/prompt?wait=false", headers=auth, data={"content": [{"type": "text", "text": text}]})
                assert res.ok, f"POST prompt: {res.status} {res.text()}"
                expect(cards).to_have_count(n + 1)
                card = cards.nth(n)
                expect(card.get_by_label("Name")).to_be_enabled()
                return card, card.get_attribute("data-question-id"), t

            card, qid, t = ask("another question answered elsewhere")
            res = page.request.post(f"{sbase}/questions/{qid}", headers=auth, data={"answer": "Grace"})
            assert res.ok, f"POST questions: {res.status} {res.text()}"
            expect(card.locator(".outcome")).to_have_text("Answered: Grace")
            expect(card.get_by_label("Name")).to_have_value("Grace")
            expect(card.get_by_label("Name")).to_be_disabled()
            expect(turns).to_have_count(t + 1)
            card, qid, t = ask("a question to decline")
            res = page.request.post(f"{sbase}/questions/{qid}", headers=auth, data={"action": "decline"})
            assert res.ok, f"POST questions: {res.status} {res.text()}"
            expect(card.locator(".outcome")).to_have_text("Declined")
            expect(card.get_by_label("Name")).to_be_disabled()
            expect(turns).to_have_count(t + 1)
            card, qid, t = ask("a question then cancel the turn")
            res = page.request.post(f"{sbase}/cancel", headers=auth)
            assert res.ok, f"POST cancel: {res.status} {res.text()}"
            expect(card.locator(".outcome")).to_have_text("Cancelled (the turn was cancelled)")
            expect(turns).to_have_count(t + 1)
            # All of them after a reload.
            page.reload()
            expect(page.get_by_text("live", exact=True)).to_be_visible()
            expect(cards.locator(".outcome")).to_have_text(["Answered: Ada", "Answered: Grace", "Declined", "Cancelled (the turn was cancelled)"])
            expect(cards.nth(1).get_by_label("Name")).to_have_value("Grace")
            for i in range(4):
                expect(cards.nth(i).get_by_label("Name")).to_be_disabled()
            run.shot(page, "sessions-answered")
            # Closed and resumed by another client: the status badge, the prompt box and the list follow.
            status = page.get_by_label("Session", exact=True).locator(".panel-head .badge").first
            expect(status).to_have_text("idle")
            res = page.request.post(f"{sbase}/close", headers=auth)
            assert res.ok, f"POST close: {res.status} {res.text()}"
            expect(status).to_have_text("closed")
            expect(status).to_have_attribute("data-known", "true")
            expect(page.get_by_label("Prompt")).to_be_disabled()
            expect(page.locator(".session-list a.active .badge")).to_have_text("closed")
            expect(page.get_by_label("Model", exact=True)).to_be_disabled()
            run.shot(page, "sessions-closed-elsewhere")
            res = page.request.post(f"{sbase}/resume", headers=auth)
            assert res.ok, f"POST resume: {res.status} {res.text()}"
            expect(status).to_have_text("idle")
            expect(page.get_by_label("Prompt")).to_be_enabled()
            expect(page.get_by_label("Model", exact=True)).to_be_enabled()
            # A form of typed fields: a number box, a checkbox and a list, answered with JSON's types.
            n, t = cards.count(), turns.count()
            res = page.request.post(f"{sbase}/prompt?wait=false", headers=auth, data={"content": [{"type": "text", "text": "survey"}]})
            assert res.ok, f"POST prompt: {res.status} {res.text()}"
            expect(cards).to_have_count(n + 1)
            survey = cards.nth(n)
            survey.get_by_label("How many").fill("3")
            survey.get_by_label("Urgent").check()
            survey.get_by_label("Colour").select_option(label="green")
            survey.get_by_role("button", name="Answer", exact=True).click()
            expect(transcript.locator(".msg", has_text="survey: accept")).to_contain_text('count=3 urgent=true color="green"')
            expect(turns).to_have_count(t + 1)
            expect(survey.get_by_label("How many")).to_be_disabled()
        run.step("Sessions: answered questions and permissions show their answers (after a reload too; answered, declined, cancelled elsewhere); closed/resumed elsewhere, the page follows", page, answered_cards)

        # ---- a big transcript: its tail only, a bounded DOM, live events in batches ----
        def big_session():
            auth = {"Authorization": f"Bearer {args.token}"}
            sbase = f"{base}/v1/workspaces/{key}/sessions"
            res = page.request.post(sbase, headers=auth, data={"agent": "mock"})
            assert res.ok, f"POST sessions: {res.status} {res.text()}"
            sid = res.json()["id"]
            try:
                # ~3,400 events: one long message of 3,000 chunks, then 30 turns of a plan and a tool (5 rows each)
                for text in ["flood 3000"] + [f"turn {i} with a plan and a tool" for i in range(1, 31)]:
                    res = page.request.post(f"{sbase}/{sid}/prompt", headers=auth, data={"content": [{"type": "text", "text": text}]})
                    assert res.ok, f"POST prompt: {res.status} {res.text()}"
                last_seq = page.request.get(f"{sbase}/{sid}", headers=auth).json()["lastEventSeq"]
                assert last_seq > 3000, last_seq
                keep = 60
                pages = []
                page.on("request", lambda r: pages.append(r.url) if f"/sessions/{sid}/events?" in r.url else None)
                page.goto(f"{ui}#/w/{quoted_key}/sessions/{sid}?keep={keep}")
                transcript = page.get_by_label("Transcript")
                expect(transcript.locator(".msg.user").last).to_contain_text("turn 30 with a plan and a tool")
                expect(transcript.locator(".event-note").last).to_have_text(re.compile("^Turn ended"))
                expect(page.get_by_text("live", exact=True)).to_be_visible()
                # Only the tail was fetched (from lastEventSeq - keep), and only `keep` rows are in the DOM.
                afters = [int(re.search(r"after=(\d+)", u).group(1)) for u in pages]
                assert afters and min(afters) == last_seq - keep, f"event pages fetched after {afters}, lastEventSeq {last_seq}"
                rows = transcript.locator(":scope > :not(.transcript-earlier)")
                assert rows.count() <= keep, f"{rows.count()} rows in the transcript, keep {keep}"
                earlier = transcript.locator(".transcript-earlier")
                expect(earlier).to_have_text(re.compile(rf"^{last_seq - keep:,} earlier events not shown"))
                bottom = "(t) => t.scrollHeight - t.scrollTop - t.clientHeight < 8"
                assert transcript.evaluate(bottom), "the transcript is not scrolled to its end"
                # Live: 3,000 chunks (rendered in batches, one per frame) join into one message, and the DOM stays bounded.
                page.get_by_label("Prompt").fill("flood 3000")
                page.get_by_role("button", name="Send", exact=True).click()
                expected = "flood 3000" + "".join(f"{i} " for i in range(1, 3001))
                expect(transcript.locator(".msg.agent").last).to_have_text(expected)
                expect(transcript.locator(".event-note").last).to_have_text(re.compile("^Turn ended"))
                expect(transcript.locator(".msg.user").last).to_have_text("flood 3000")
                assert rows.count() <= keep, f"{rows.count()} rows in the transcript, keep {keep}"
                assert transcript.evaluate(bottom), "the transcript did not follow the stream"
                run.shot(page, "sessions-big")
                # "Show earlier" renders the previous page above, where the reader is, and the count goes down.
                before = rows.count()
                shown = int(earlier.text_content().split()[0].replace(",", ""))
                transcript.evaluate("(t) => { t.scrollTop = 0; }")
                earlier.get_by_role("button", name="Show earlier").click()
                expect(earlier).to_have_text(re.compile(rf"^{shown - 500:,} earlier events not shown"))
                assert rows.count() > before, f"{rows.count()} rows after Show earlier, {before} before"
                assert transcript.evaluate("(t) => t.scrollTop") > 0, "the transcript jumped to the new top"
            finally:
                page.request.delete(f"{sbase}/{sid}", headers=auth)
        run.step("Sessions: a big transcript (3,400 events, keep=60) shows its tail, keeps the DOM bounded, streams 3,000 chunks into one message, shows earlier", page, big_session)

        # ---- previews ----
        def previews():
            goto_tab("previews")
            page.get_by_label("Port").fill(str(preview_port))
            page.get_by_role("button", name="Create preview").click()
            row = page.locator(f"tr[data-port='{preview_port}']")
            expect(row).to_have_count(1)
            expect(row.get_by_role("link", name="Open")).to_have_attribute("href", re.compile(r"/preview/[a-z0-9]+/$"))
            run.shot(page, "previews")
            row.get_by_role("button", name="Revoke").click()
            expect(row).to_have_count(0)
        run.step(f"Previews: create one for port {preview_port}, see it, revoke it, see it gone", page, previews)

        # ---- processes ----
        def processes():
            goto_tab("processes")
            page.get_by_label("Command").fill("for i in 1 2 3; do echo proc-line-$i; sleep 0.3; done; echo oops >&2")
            page.get_by_role("button", name="Run", exact=True).click()
            out = page.get_by_label("Process output")
            expect(out).to_contain_text("proc-line-3")
            expect(out).to_contain_text("exited with code 0")
            page.get_by_label("Command").fill("sleep 600")
            page.get_by_role("button", name="Run", exact=True).click()
            # Its own row's Kill: the list may still show the first process as running for a moment.
            kill = page.locator("tr", has_text="sleep 600").get_by_role("button", name="Kill")
            expect(kill).to_be_visible()
            kill.click()
            expect(page.get_by_label("Process output")).to_contain_text("signal")
            page.get_by_label("How to run").select_option("exec")
            page.get_by_label("Command").fill("echo exec-$((2+3)); echo warn >&2; exit 3")
            page.get_by_role("button", name="Run", exact=True).click()
            exec_out = page.get_by_label("Exec output")
            expect(exec_out).to_contain_text("exec-5")
            expect(exec_out).to_contain_text("[exit 3")
            run.shot(page, "processes")
        run.step("Processes: start a shell line, see its live output, kill a long one, exec one", page, processes)

        # ---- cron ----
        def cron():
            goto_tab("cron")
            page.get_by_label("Schedule").fill("*/5 * * * *")
            page.get_by_label("Command", exact=True).fill("date >> /workspace/cron.log")
            page.get_by_role("button", name="Create job").click()
            row = page.locator("tr", has_text="*/5 * * * *")
            expect(row).to_be_visible()
            row.get_by_role("button", name="Run now").click()
            row.get_by_role("link", name="Runs").click()
            expect(page.get_by_role("heading", name=re.compile("^Runs of"))).to_be_visible()
            expect(page.locator("table").last).to_contain_text(re.compile("ok|running"))
            run.shot(page, "cron")
        run.step("Cron: create an exec job, run it now, see its run", page, cron)

        # ---- events ----
        def events():
            goto_tab("events")
            expect(page.get_by_role("heading", name="Workspace events")).to_be_visible()
            expect(page.get_by_role("status").filter(has_text=re.compile("^live$"))).to_be_visible()
            res = page.request.post(f"{base}/v1/workspaces/{key}/processes",
                                    headers={"Authorization": f"Bearer {args.token}"},
                                    data={"command": "echo", "args": ["event-marker-" + str(a)]})
            assert res.ok, f"POST processes: {res.status} {res.text()}"
            table = page.get_by_label("Workspace events")
            expect(table).to_contain_text(f"event-marker-{a}")
            expect(table).to_contain_text("processExit")
            run.shot(page, "events")
        run.step("Events: a process started through the API shows up live", page, events)

        # ---- every state the API sends has a label; one it does not know is shown as is ----
        def states():
            def patch(pattern, edit):
                def handler(route):
                    if route.request.method != "GET":
                        route.continue_()
                        return
                    res = route.fetch()
                    route.fulfill(response=res, json=edit(res.json()))
                page.route(pattern, handler)

            def known(badge, text, tone):
                expect(badge).to_have_text(text)
                expect(badge).to_have_attribute("data-known", "true")
                expect(badge).to_have_class(re.compile(rf"\btone-{tone}\b"))

            def unknown(badge, text):
                expect(badge).to_have_text(text)
                expect(badge).to_have_attribute("data-known", "false")
                expect(badge).to_have_class(re.compile(r"\btone-neutral\b"))
                expect(badge).to_have_attribute("title", re.compile("does not know"))

            sid = shared["sid"]
            try:
                # Workspaces: sleeping, booting, running, and a state from a newer server.
                patch(f"{base}/v1/workspaces", lambda body: {**body, "items": body["items"] + [
                    {**body["items"][0], "key": f"zz-{state}", "state": state} for state in ("sleeping", "booting", "running", "hibernating")]})
                page.goto(f"{ui}#/workspaces")
                known(page.locator("tr[data-key='zz-sleeping'] .badge"), "sleeping", "muted")
                known(page.locator("tr[data-key='zz-booting'] .badge"), "booting", "warn")
                known(page.locator("tr[data-key='zz-running'] .badge"), "running", "ok")
                unknown(page.locator("tr[data-key='zz-hibernating'] .badge"), "hibernating")
                expect(page.locator(f"tr[data-key='{key}'] .badge")).to_have_attribute("data-known", "true")
                expect(page.locator(".sidebar a[title='zz-hibernating'] .dot")).to_have_class(re.compile(r"\bunknown\b"))
                expect(page.locator(".sidebar a[title='zz-booting'] .dot")).to_have_class(re.compile(r"\bbooting\b"))
                run.shot(page, "states-workspaces")
                # Sessions: idle, running, closed and a newer status, in the list and in the session's header.
                patch(f"{base}/v1/workspaces/{key}/sessions", lambda body: {**body, "items": body["items"] + [
                    {**body["items"][0], "id": f"ses_zz{status}", "status": status, "createdAt": "2000-01-01T00:00:00Z"}
                    for status in ("idle", "running", "closed", "suspended")]})
                patch(f"{base}/v1/workspaces/{key}/sessions/{sid}", lambda body: {**body, "status": "suspended"})
                page.goto(f"{ui}#/w/{quoted_key}/sessions/{sid}")
                listed = lambda status: page.locator(".session-list a", has_text=f"ses_zz{status}").locator(".badge")
                known(listed("idle"), "idle", "ok")
                known(listed("running"), "running", "busy")
                known(listed("closed"), "closed", "muted")
                unknown(listed("suspended"), "suspended")
                unknown(page.get_by_label("Session", exact=True).locator(".panel-head .badge").first, "suspended")
                expect(page.get_by_label("Prompt")).to_be_enabled()
                run.shot(page, "states-sessions")
                # Processes: running, exited (code, signal), and a newer status.
                proc = {"pid": 1, "args": [], "cwd": "/workspace", "startedAt": "2000-01-01T00:00:00Z"}
                page.route(f"{base}/v1/workspaces/{key}/processes", lambda route: route.fulfill(json={"items": [
                    {**proc, "id": "proc_zz1", "command": "zz-running", "status": "running"},
                    {**proc, "id": "proc_zz2", "command": "zz-exit-0", "status": "exited", "exitCode": 0},
                    {**proc, "id": "proc_zz3", "command": "zz-exit-3", "status": "exited", "exitCode": 3},
                    {**proc, "id": "proc_zz4", "command": "zz-killed", "status": "exited", "exitCode": 137, "signal": "KILL"},
                    {**proc, "id": "proc_zz5", "command": "zz-paused", "status": "paused"}]}) if route.request.method == "GET" else route.continue_())
                goto_tab("processes")
                row = lambda command: page.locator("tr", has_text=command).locator(".badge")
                known(row("zz-running"), "running", "ok")
                known(row("zz-exit-0"), "exit 0", "ok")
                known(row("zz-exit-3"), "exit 3", "danger")
                known(row("zz-killed"), "killed (KILL)", "danger")
                unknown(row("zz-paused"), "paused")
                # Cron runs: each status, and a newer one.
                run_statuses = ("queued", "running", "ok", "error", "skipped", "retrying")
                page.route("**/cron/zz-job/runs*", lambda route: route.fulfill(json={"items": [
                    {"runId": f"run_{st}", "jobId": "zz-job", "scheduledAt": "2000-01-01T00:00:00Z", "trigger": "manual", "status": st}
                    for st in run_statuses]}))
                goto_tab("cron?job=zz-job")
                badges = page.locator("table").last.locator("tbody .badge")
                expect(badges).to_have_text(list(run_statuses))
                for i, tone in enumerate(("warn", "busy", "ok", "danger", "muted")):
                    known(badges.nth(i), run_statuses[i], tone)
                unknown(badges.nth(5), "retrying")
                run.shot(page, "states-cron")
                # The metrics' state, as the workspace's.
                goto_tab("usage")
                expect(page.locator(".stat", has_text="State").locator(".badge")).to_have_attribute("data-known", "true")
            finally:
                page.unroute_all()
        run.step("States: every workspace, session, process and cron run state has a label and a colour; an unknown one shows as is", page, states)

        # ---- the remaining buttons ----
        def other_actions():
            goto_tab("processes")
            page.get_by_label("How to run").select_option("args")
            page.get_by_label("Command").fill("echo 'two words' plain")
            page.get_by_role("button", name="Run", exact=True).click()
            expect(page.get_by_label("Process output")).to_contain_text("two words plain")
            goto_tab("terminal")
            expect(page.get_by_text(re.compile(r"^Connected"))).to_be_visible()
            page.get_by_role("button", name="Close shell").click()
            expect(page.get_by_text("Shell closed")).to_be_visible()
            page.get_by_role("button", name="New shell").click()
            expect(page.get_by_text(re.compile(r"^Connected"))).to_be_visible()
            page.locator(".xterm").click()
            page.keyboard.type("exit 7")
            page.keyboard.press("Enter")
            expect(page.locator(".xterm-rows")).to_contain_text("the shell exited with code 7")
            goto_tab("cron")
            row = page.locator("tr", has_text="*/5 * * * *")
            row.get_by_role("button", name="Delete").click()
            page.get_by_role("dialog").get_by_role("button", name="Delete").click()
            expect(page.get_by_text("No cron jobs.")).to_be_visible()
            goto_tab("files")
            page.get_by_label("Root folder").select_option("/home/agent")
            expect(page.get_by_label("Root folder")).to_have_value("/home/agent")
            expect(page.locator("table")).to_be_visible()
            page.get_by_role("button", name="Sleep", exact=True).click()
            expect(page.locator(".page-head .badge")).to_have_text("sleeping")
        run.step("Other actions: command + args, close/new/exit shell, delete a cron job, /home/agent, sleep", page, other_actions)

        # ---- usage ----
        def usage():
            goto_tab("usage")
            expect(page.get_by_text("CPU time")).to_be_visible()
            expect(page.get_by_text("LLM requests")).to_be_visible()
            run.shot(page, "usage")
        run.step("Usage & metrics: figures shown", page, usage)

        # ---- tokens ----
        def tokens():
            page.goto(f"{ui}#/tokens")
            page.get_by_label("Label").fill(secret_label["label"])
            page.get_by_label("Role").select_option("reader")
            page.get_by_label("Workspace patterns").fill(key)
            page.get_by_role("button", name="Create token").click()
            expect(page.get_by_label("New token secret")).to_have_text(re.compile(r"\S{16,}"))
            run.shot(page, "tokens")
        run.step("Tokens: create a reader token, its secret is shown once", page, tokens)

        def revoked_token():
            secret = page.get_by_label("New token secret").text_content().strip()
            other = browser.new_context(viewport={"width": 1280, "height": 800})
            other.set_default_timeout(TIMEOUT_MS)
            opage = other.new_page()
            run.watch(opage, "reader")
            try:
                opage.goto(ui)
                opage.get_by_label("API token").fill(secret)
                opage.get_by_role("button", name="Log in").click()
                expect(opage.locator(f"tr[data-key='{key}']")).to_be_visible()
                # the admin deletes it on the Tokens page
                row = page.locator("tr", has_text=secret_label["label"])
                row.get_by_role("button", name="Delete").click()
                page.get_by_role("dialog").get_by_role("button", name="Delete").click()
                expect(row).to_have_count(0)
                # the reader's next call gets 401 and lands on the login page with a message
                opage.get_by_role("button", name="Refresh").click()
                expect(opage.get_by_role("heading", name="Sign in")).to_be_visible()
                expect(opage.get_by_role("status").or_(opage.get_by_role("alert")).first).to_contain_text("refused")
            finally:
                other.close()
        run.step("A deleted token: the reader using it is sent back to the login page", page, revoked_token)

        # ---- phone width ----
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        phone.set_default_timeout(TIMEOUT_MS)
        ppage = phone.new_page()
        run.watch(ppage, "phone")

        def phone_pages():
            ppage.goto(ui)
            expect(ppage.get_by_role("heading", name="Sign in")).to_be_visible()
            run.shot(ppage, "phone-login")
            ppage.get_by_label("API token").fill(args.token)
            ppage.get_by_role("button", name="Log in").click()
            expect(ppage.get_by_role("heading", name="Workspaces", exact=True)).to_be_visible()
            # the sidebar is hidden at phone width and opens from the menu button
            side_link = ppage.locator(".sidebar").get_by_role("link", name="Tokens")
            expect(side_link).not_to_be_in_viewport()
            ppage.get_by_role("button", name="Menu").click()
            expect(side_link).to_be_in_viewport()
            ppage.wait_for_timeout(400)  # the slide-in transition
            run.shot(ppage, "phone-menu")
            ppage.locator(".scrim").click(position={"x": 350, "y": 400})
            expect(side_link).not_to_be_in_viewport()
            ppage.wait_for_timeout(400)
            run.shot(ppage, "phone-workspaces")
            for tab, check in [("files", "Current directory"), ("terminal", None), ("sessions", "Agent"), ("previews", "Port"),
                               ("cron", "Schedule"), ("processes", "Command"), ("events", "Workspace events"), ("usage", None)]:
                ppage.goto(f"{ui}#/w/{quoted_key}/{tab}")
                if tab == "terminal":
                    expect(ppage.get_by_text(re.compile(r"^Connected"))).to_be_visible()
                elif tab == "usage":
                    expect(ppage.get_by_text("CPU time")).to_be_visible()
                else:
                    expect(ppage.get_by_label(check).first).to_be_visible()
                if tab == "sessions":
                    ppage.locator(".session-list a").first.click()
                    expect(ppage.get_by_label("Transcript")).to_contain_text("permission: approved")
                if tab == "files":
                    ppage.get_by_role("link", name=file_name).click()
                    expect(ppage.get_by_label("File content")).to_have_value(file_text)
                ppage.wait_for_timeout(300)
                run.shot(ppage, f"phone-{tab}")
            ppage.goto(f"{ui}#/tokens")
            expect(ppage.get_by_role("button", name="Create token")).to_be_visible()
            run.shot(ppage, "phone-tokens")
            # nothing may overflow the phone's width
            width = ppage.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the page is {width} px wide at a 390 px viewport"
        run.step("Phone width (390×844): every page renders, the menu opens and closes", ppage, phone_pages)

        def login_link():
            # made in the desktop tab (Tokens page), used in the phone tab
            page.goto(f"{ui}#/tokens")
            page.get_by_role("button", name="Make a login link").click()
            link = page.get_by_label("Login link")
            expect(link).to_have_text(re.compile(r"/ui/#login=\S+$"))
            url = link.text_content().strip()
            ppage.get_by_role("button", name="Log out").click()
            expect(ppage.get_by_role("heading", name="Sign in")).to_be_visible()
            ppage.goto(url)
            expect(ppage.get_by_role("heading", name="Workspaces", exact=True)).to_be_visible()
            assert "#login" not in ppage.url, f"the login code stayed in the URL: {ppage.url}"
            expect(ppage.locator(f"tr[data-key='{key}']")).to_be_visible()
            # the link works once
            ppage.get_by_role("button", name="Log out").click()
            expect(ppage.get_by_role("heading", name="Sign in")).to_be_visible()
            ppage.goto(url)
            expect(ppage.get_by_role("alert")).to_contain_text("this login link has expired or was used", ignore_case=True)
            assert "#login" not in ppage.url, f"the login code stayed in the URL: {ppage.url}"
            expect(ppage.get_by_label("API token")).to_be_visible()
        run.step("Login link: made on the Tokens page, signs the phone in once, then says it was used", ppage, login_link)

        # ---- delete the workspace (cleanup, through the UI) ----
        def delete_workspace():
            page.goto(f"{ui}#/workspaces")
            row = page.locator(f"tr[data-key='{key}']")
            expect(row).to_be_visible()
            row.get_by_role("button", name="Delete").click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_contain_text(key)
            dialog.get_by_role("button", name="Delete").click()
            expect(row).to_have_count(0)
        run.step("Delete the workspace (with the confirm dialog)", page, delete_workspace)

        browser.close()

    if run.page_errors:
        print("JavaScript errors in the page:")
        for line in run.page_errors:
            print(f"  {line}")
    ok = not run.failed and not run.page_errors
    print("ALL STEPS PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
