"""Drives AgentBox's E2B-compatible API with E2B's own, unmodified Python SDKs (installed by scripts/setup-e2b.sh).

Usage: python e2b_sdk_test.py core|interpreter|attack
Environment: E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY (the SDK's own variables), AGENTBOX_URL and AGENTBOX_TOKEN
(for the checks through AgentBox's /v1 API). Prints one JSON object: {check: "ok" | "<what went wrong>"}; exits 0.
"""
import io
import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid

results = {}


def check(name):
    def wrap(function):
        started = time.monotonic()
        try:
            function()
            results[name] = "ok"
        except BaseException as error:  # noqa: BLE001 — every failure is a result
            results[name] = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=4)}"
        results[name + ".seconds"] = round(time.monotonic() - started, 3)
        return function

    return wrap


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def agentbox(method, path, body=None, token=None, headers=None):
    """A call to AgentBox's own API (or any raw HTTP call): (status, headers, body bytes)."""
    request = urllib.request.Request(os.environ["AGENTBOX_URL"] + path, method=method, data=body)
    if token is not None:
        request.add_header("Authorization", "Bearer " + token)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def core():
    from e2b import Sandbox, CommandExitException, NotFoundException, SandboxException, TimeoutException
    from e2b import PtySize
    import e2b

    version = getattr(e2b, "__version__", None)
    try:
        from importlib.metadata import version as package_version

        version = package_version("e2b")
    except Exception:
        pass
    results["sdk.version"] = version
    run = uuid.uuid4().hex
    state = {}

    @check("create")
    def _():
        sandbox = Sandbox.create(metadata={"run": run, "kind": "core"}, envs={"E2B_TEST_VAR": "from-create"}, timeout=120)
        state["sandbox"] = sandbox
        expect(sandbox.sandbox_id, "no sandbox id")

    sandbox = state.get("sandbox")
    if sandbox is None:
        return

    @check("visible_through_v1")
    def _():
        status, _, body = agentbox("GET", f"/v1/workspaces/{sandbox.sandbox_id}", token=os.environ["AGENTBOX_TOKEN"])
        expect(status == 200, f"GET /v1/workspaces/{sandbox.sandbox_id}: {status} {body[:200]!r}")

    @check("commands.run")
    def _():
        result = sandbox.commands.run("echo hi")
        expect(result.stdout == "hi\n" and result.exit_code == 0, f"echo hi: {result!r}")

    @check("commands.user_and_home")
    def _():
        result = sandbox.commands.run("id -u; pwd; echo $HOME; whoami 2>/dev/null || true")
        lines = result.stdout.splitlines()
        expect(lines[0] != "0", f"commands run as root: {lines}")
        expect(lines[1] == "/home/user" and lines[2] == "/home/user", f"cwd/HOME: {lines}")
        expect(lines[3] == "user", f"whoami: {lines}")
        expect(sandbox.commands.run("echo ~; id -gn").stdout.split() == ["/home/user", "user"], "~ and the group")

    @check("commands.as_root")
    def _():
        result = sandbox.commands.run("id -u; echo $HOME", user="root")
        expect(result.stdout.split() == ["0", "/root"], f"user=root: {result.stdout!r}")

    @check("commands.envs")
    def _():
        result = sandbox.commands.run("echo $E2B_TEST_VAR $CALL_VAR", envs={"CALL_VAR": "from-call"})
        expect(result.stdout == "from-create from-call\n", f"envs: {result.stdout!r}")

    @check("commands.cwd")
    def _():
        result = sandbox.commands.run("pwd", cwd="/tmp")
        expect(result.stdout == "/tmp\n", f"cwd: {result.stdout!r}")

    @check("commands.streaming")
    def _():
        seen = []
        stamps = []
        result = sandbox.commands.run(
            "for i in 1 2 3; do echo line$i; sleep 0.5; done; echo oops >&2",
            on_stdout=lambda data: (seen.append(data), stamps.append(time.monotonic())),
            on_stderr=lambda data: seen.append("err:" + data),
        )
        joined = "".join(item for item in seen if not item.startswith("err:"))
        expect(joined == "line1\nline2\nline3\n", f"stdout callbacks: {seen!r}")
        expect(any(item.startswith("err:oops") for item in seen), f"stderr callback: {seen!r}")
        # line1 and line3 are a second apart; even if the first two arrive together, the last comes 0.5 s later.
        expect(len(stamps) >= 2 and stamps[-1] - stamps[0] > 0.4, f"output was not streamed as it came: {stamps}")
        expect(result.stderr == "oops\n", f"stderr: {result.stderr!r}")

    @check("commands.exit_code")
    def _():
        try:
            sandbox.commands.run("echo bad >&2; exit 3")
        except CommandExitException as error:
            expect(error.exit_code == 3 and "bad" in error.stderr, f"exception: {error.exit_code} {error.stderr!r}")
            return
        raise AssertionError("no CommandExitException")

    @check("commands.timeout")
    def _():
        started = time.monotonic()
        try:
            sandbox.commands.run("sleep 30", timeout=2)
        except TimeoutException:
            expect(time.monotonic() - started < 15, "the timeout took too long")
            return
        raise AssertionError("no TimeoutException")

    @check("commands.background_list_kill")
    def _():
        handle = sandbox.commands.run("sleep 60", background=True)
        pids = [process.pid for process in sandbox.commands.list()]
        expect(handle.pid in pids, f"pid {handle.pid} not listed in {pids}")
        expect(sandbox.commands.kill(handle.pid) is True, "kill did not return True")
        try:
            handle.wait()
        except CommandExitException as error:
            expect(error.exit_code != 0, "killed process exited 0")
        deadline = time.monotonic() + 5
        while handle.pid in [process.pid for process in sandbox.commands.list()] and time.monotonic() < deadline:
            time.sleep(0.1)
        expect(handle.pid not in [process.pid for process in sandbox.commands.list()], "killed process still listed")
        expect(sandbox.commands.kill(999999) is False, "kill of an unknown pid did not return False")

    @check("commands.stdin")
    def _():
        handle = sandbox.commands.run("cat", background=True, stdin=True)
        sandbox.commands.send_stdin(handle.pid, "hello stdin\n")
        if hasattr(sandbox.commands, "close_stdin"):
            sandbox.commands.close_stdin(handle.pid)
        else:
            sandbox.commands.kill(handle.pid)
        try:
            result = handle.wait()
            expect("hello stdin" in result.stdout, f"cat echoed {result.stdout!r}")
        except CommandExitException as error:
            expect("hello stdin" in error.stdout, f"cat echoed {error.stdout!r}")

    @check("commands.connect")
    def _():
        handle = sandbox.commands.run("sleep 1; echo late", background=True)
        again = sandbox.commands.connect(handle.pid)
        result = again.wait()
        expect("late" in result.stdout, f"connected stream: {result.stdout!r}")

    @check("commands.process_group_kill")
    def _():
        handle = sandbox.commands.run("sleep 100 & sleep 100 & wait", background=True)
        time.sleep(0.5)
        sandbox.commands.kill(handle.pid)
        time.sleep(0.5)
        left = sandbox.commands.run("pgrep -x sleep | wc -l").stdout.strip()
        expect(left == "0", f"{left} sleeps outlived the kill of their group")

    @check("pty")
    def _():
        import threading

        received = []
        handle = sandbox.pty.create(PtySize(rows=24, cols=80))

        def read():
            try:
                handle.wait(on_pty=received.append)
            except Exception:  # noqa: BLE001 — the kill below ends the PTY with a non-zero code
                pass

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        sandbox.pty.send_stdin(handle.pid, b"echo pty-$((6*7))\n")
        sandbox.pty.resize(handle.pid, PtySize(rows=30, cols=100))
        sandbox.pty.send_stdin(handle.pid, b"stty size\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = b"".join(received).decode(errors="replace")
            if "pty-42" in text and "30 100" in text:
                break
            time.sleep(0.1)
        text = b"".join(received).decode(errors="replace")
        expect(sandbox.pty.kill(handle.pid) is True, "pty kill did not return True")
        reader.join(10)
        expect(not reader.is_alive(), "the PTY's stream did not end after the kill")
        expect("pty-42" in text and "30 100" in text, f"pty output: {text[-300:]!r}")

    @check("files.write_read")
    def _():
        info = sandbox.files.write("/home/user/hello.txt", "hello files")
        expect(info.path == "/home/user/hello.txt", f"write info: {info!r}")
        expect(sandbox.files.read("/home/user/hello.txt") == "hello files", "read back")
        expect(sandbox.commands.run("cat hello.txt").stdout == "hello files", "cat in the sandbox")
        sandbox.commands.run("echo more >> hello.txt")

    @check("files.bytes_and_file_objects")
    def _():
        payload = bytes(range(256)) * 4096
        sandbox.files.write("/home/user/data/blob.bin", io.BytesIO(payload))
        expect(bytes(sandbox.files.read("/home/user/data/blob.bin", format="bytes")) == payload, "bytes round trip")
        if hasattr(sandbox.files, "write_files"):
            from e2b.sandbox.filesystem.filesystem import WriteEntry

            sandbox.files.write_files([WriteEntry(path="/home/user/m1.txt", data="one"), WriteEntry(path="m2.txt", data="two")])
            expect(sandbox.files.read("m1.txt") == "one" and sandbox.files.read("/home/user/m2.txt") == "two", "write_files")

    @check("files.visible_through_v1")
    def _():
        status, _, body = agentbox(
            "GET", f"/v1/workspaces/{sandbox.sandbox_id}/fs/file?path=/home/agent/hello.txt", token=os.environ["AGENTBOX_TOKEN"]
        )
        expect(status == 200 and body == b"hello filesmore\n", f"/v1 fs read: {status} {body[:100]!r}")

    @check("files.list_exists_info")
    def _():
        names = {entry.name for entry in sandbox.files.list("/home/user")}
        expect({"hello.txt", "data"} <= names, f"list: {names}")
        expect(sandbox.files.exists("/home/user/hello.txt") and not sandbox.files.exists("/home/user/nope"), "exists")
        info = sandbox.files.get_info("/home/user/hello.txt")
        expect(info.size == 16 and info.type.value == "file" and info.path == "/home/user/hello.txt", f"info: {info!r}")
        try:
            sandbox.files.read("/home/user/nope")
        except NotFoundException:
            pass
        else:
            raise AssertionError("reading a missing file raised nothing")

    @check("files.make_dir_rename_remove")
    def _():
        expect(sandbox.files.make_dir("/home/user/newdir/sub") is True, "make_dir")
        expect(sandbox.files.make_dir("/home/user/newdir/sub") is False, "make_dir of an existing dir")
        moved = sandbox.files.rename("/home/user/hello.txt", "/home/user/newdir/renamed.txt")
        expect(moved.path == "/home/user/newdir/renamed.txt", f"rename: {moved!r}")
        sandbox.files.remove("/home/user/newdir")
        expect(not sandbox.files.exists("/home/user/newdir"), "remove")

    @check("files.outside_home")
    def _():
        sandbox.files.write("/tmp/job/script.py", "print(6 * 7)")
        expect(sandbox.commands.run("python3 /tmp/job/script.py").stdout == "42\n", "run a script written to /tmp")
        sandbox.commands.run("echo made-by-command > /tmp/job/out.txt")
        expect(sandbox.files.read("/tmp/job/out.txt") == "made-by-command\n", "read what a command wrote in /tmp")
        payload = bytes(range(256)) * 64
        sandbox.files.write("/tmp/job/blob.bin", payload)
        expect(bytes(sandbox.files.read("/tmp/job/blob.bin", format="bytes")) == payload, "bytes round trip in /tmp")
        names = {entry.name for entry in sandbox.files.list("/tmp/job")}
        expect(names == {"script.py", "out.txt", "blob.bin"}, f"list /tmp/job: {names}")
        info = sandbox.files.get_info("/tmp/job/blob.bin")
        expect(info.size == len(payload) and info.type.value == "file", f"info: {info!r}")
        expect(sandbox.files.exists("/tmp/job/out.txt") and not sandbox.files.exists("/tmp/job/nope"), "exists in /tmp")
        expect(sandbox.files.make_dir("/tmp/job/sub") is True and sandbox.files.make_dir("/tmp/job/sub") is False, "make_dir in /tmp")
        moved = sandbox.files.rename("/tmp/job/out.txt", "/home/user/from-tmp.txt")
        expect(moved.path == "/home/user/from-tmp.txt" and sandbox.files.read("from-tmp.txt") == "made-by-command\n", "rename /tmp → home")
        sandbox.files.remove("/tmp/job")
        expect(not sandbox.files.exists("/tmp/job"), "remove in /tmp")
        owner = sandbox.commands.run("mkdir -p /tmp/o && echo x > /tmp/o/f && stat -c %u /tmp/o/f").stdout.strip()
        sandbox.files.write("/tmp/o/g", "y")
        expect(sandbox.commands.run("stat -c %u /tmp/o/g").stdout.strip() == owner, "a file written to /tmp belongs to the user")
        try:
            sandbox.files.read("/etc/shadow-does-not-exist")
        except NotFoundException:
            pass
        else:
            raise AssertionError("reading a missing file outside home raised nothing")

    @check("files.watch")
    def _():
        sandbox.files.make_dir("/home/user/watched")
        watcher = sandbox.files.watch_dir("/home/user/watched")
        sandbox.files.write("/home/user/watched/by-api.txt", "x")
        sandbox.commands.run("echo y > /home/user/watched/by-command.txt")
        deadline = time.monotonic() + 10
        names = set()
        while time.monotonic() < deadline and not {"by-api.txt", "by-command.txt"} <= names:
            names |= {event.name for event in watcher.get_new_events()}
            time.sleep(0.2)
        watcher.stop()
        expect({"by-api.txt", "by-command.txt"} <= names, f"watch events: {names}")

    @check("set_timeout_and_info")
    def _():
        sandbox.set_timeout(600)
        info = sandbox.get_info()
        remaining = info.end_at.timestamp() - time.time()
        expect(500 < remaining <= 601, f"end_at is {remaining:.0f} s away")
        expect(info.metadata.get("run") == run, f"metadata: {info.metadata}")

    @check("metrics")
    def _():
        metrics = sandbox.get_metrics()
        expect(len(metrics) >= 1 and metrics[0].mem_total > 0 and metrics[0].cpu_count >= 1, f"metrics: {metrics!r}")

    @check("list")
    def _():
        from e2b import SandboxQuery

        second = Sandbox.create(metadata={"run": run, "kind": "second"}, timeout=60)
        state["second"] = second
        found = []
        paginator = Sandbox.list(query=SandboxQuery(metadata={"run": run}), limit=1)
        while paginator.has_next:
            found += [item.sandbox_id for item in paginator.next_items()]
        expect(sorted(found) == sorted([sandbox.sandbox_id, second.sandbox_id]), f"paged list: {found}")
        only = Sandbox.list(query=SandboxQuery(metadata={"run": run, "kind": "second"})).next_items()
        expect([item.sandbox_id for item in only] == [second.sandbox_id], f"metadata filter: {only}")

    @check("pause_resume")
    def _():
        from e2b import SandboxQuery, SandboxState

        sandbox.files.write("/home/user/kept.txt", "kept")
        sandbox.pause()
        paused = Sandbox.list(query=SandboxQuery(metadata={"run": run}, state=[SandboxState.PAUSED])).next_items()
        expect([item.sandbox_id for item in paused] == [sandbox.sandbox_id], f"paused list: {paused}")
        resumed = Sandbox.connect(sandbox.sandbox_id)
        expect(resumed.files.read("/home/user/kept.txt") == "kept", "files kept over pause")
        expect(resumed.commands.run("echo back").stdout == "back\n", "commands after resume")
        running = Sandbox.list(query=SandboxQuery(metadata={"run": run}, state=[SandboxState.RUNNING])).next_items()
        expect(sandbox.sandbox_id in [item.sandbox_id for item in running], "resumed sandbox not running")

    @check("timeout_pauses")
    def _():
        second = state["second"]
        second.set_timeout(2)
        time.sleep(4)
        info = Sandbox.get_info(second.sandbox_id)
        expect(info.state.value == "paused", f"state after timeout: {info.state}")
        again = Sandbox.connect(second.sandbox_id)
        expect(again.commands.run("echo alive").stdout == "alive\n", "resumed after timeout")

    @check("timeout_spares_a_sandbox_in_use")
    def _():
        sandbox.set_timeout(2)
        result = sandbox.commands.run("sleep 4; echo finished", timeout=30)
        expect(result.stdout == "finished\n", f"a command outlasting the timeout: {result.stdout!r}")
        expect(Sandbox.get_info(sandbox.sandbox_id).state.value == "running", "paused while a command ran")
        sandbox.set_timeout(600)

    @check("templates_are_images")
    def _():
        # An AgentBox image made from this sandbox (a file in its system layer) is a template by its name.
        sandbox.commands.run("echo from-the-template > /usr/local/share/e2b-template-marker", user="root")
        name = "e2b-tools-" + run[:8]
        body = json.dumps({"name": name, "fromWorkspace": sandbox.sandbox_id}).encode()
        status, _, answer = agentbox(
            "POST", "/v1/images", body, token=os.environ["AGENTBOX_TOKEN"], headers={"Content-Type": "application/json"})
        expect(status == 201, f"image: {status} {answer[:300]!r}")
        made = Sandbox.create(name, timeout=60)
        try:
            out = made.commands.run("cat /usr/local/share/e2b-template-marker").stdout
            expect(out.strip() == "from-the-template", f"the template's file: {out!r}")
            expect(made.commands.run("whoami").stdout.strip() != "", "no user")
        finally:
            made.kill()
        # As E2B's cloud answers an unknown template: a 404, which the SDK raises at create as a SandboxException.
        try:
            Sandbox.create("no-such-template", timeout=60)
        except SandboxException as error:
            expect("404" in str(error) and "no-such-template" in str(error), f"unknown template: {error}")
        else:
            raise AssertionError("a template that is neither AgentBox's nor an image was created")

    @check("kill")
    def _():
        second = state["second"]
        expect(Sandbox.kill(second.sandbox_id) is True, "kill returned False")
        expect(Sandbox.kill(second.sandbox_id) is False, "second kill returned True")
        try:
            Sandbox.connect(second.sandbox_id)
        except NotFoundException:
            pass
        else:
            raise AssertionError("connect to a killed sandbox succeeded")
        sandbox.kill()
        status, _, _ = agentbox("GET", f"/v1/workspaces/{sandbox.sandbox_id}", token=os.environ["AGENTBOX_TOKEN"])
        expect(status == 404, f"workspace of a killed sandbox: {status}")

    @check("async_sandbox")
    def _():
        # The async SDK calls the same routes: create, a streamed command, files both ways, a PTY-less background
        # command killed, then the sandbox killed.
        import asyncio
        from e2b import AsyncSandbox

        async def drive():
            box = await AsyncSandbox.create(metadata={"run": run, "kind": "async"}, timeout=120)
            try:
                seen = []
                result = await box.commands.run("echo one; echo two", on_stdout=lambda chunk: seen.append(str(chunk)))
                expect(result.exit_code == 0 and result.stdout.split() == ["one", "two"], f"async run: {result}")
                expect("".join(seen).split() == ["one", "two"], f"async streaming: {seen}")
                await box.files.write("/home/user/async.txt", "written async")
                expect(await box.files.read("/home/user/async.txt") == "written async", "async files")
                expect(any(entry.name == "async.txt" for entry in await box.files.list("/home/user")), "async list")
                background = await box.commands.run("sleep 600", background=True)
                expect(await box.commands.kill(background.pid) is True, "async kill of a command")
                expect((await box.commands.run("whoami")).stdout.strip() == "user", "async whoami")
            finally:
                await box.kill()
            expect(not await AsyncSandbox.kill(box.sandbox_id), "a second async kill found the sandbox")

        asyncio.run(drive())


def interpreter():
    from e2b_code_interpreter import Sandbox

    state = {}

    @check("ci.create")
    def _():
        state["sandbox"] = Sandbox.create(timeout=120)

    sandbox = state.get("sandbox")
    if sandbox is None:
        return

    @check("ci.state_persists")
    def _():
        sandbox.run_code("x = 41")
        execution = sandbox.run_code("x + 1")
        expect(execution.text == "42", f"text: {execution.text!r} error: {execution.error}")
        expect(execution.execution_count == 2, f"execution_count {execution.execution_count}")

    @check("ci.stdout_and_callbacks")
    def _():
        seen = []
        execution = sandbox.run_code("import os\nprint('hello'); print(os.getuid())", on_stdout=lambda message: seen.append(message.line))
        expect(execution.logs.stdout[0] == "hello\n", f"stdout: {execution.logs.stdout}")
        expect(execution.logs.stdout[1].strip() != "0", "the kernel runs as root")
        expect(seen and seen[0] == "hello\n", f"callback: {seen}")

    @check("ci.error")
    def _():
        execution = sandbox.run_code("1 / 0")
        expect(execution.error is not None and execution.error.name == "ZeroDivisionError", f"error: {execution.error}")

    @check("ci.matplotlib_png")
    def _():
        execution = sandbox.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
        pngs = [result.png for result in execution.results if result.png]
        expect(execution.error is None, f"error: {execution.error}")
        expect(pngs and pngs[0].startswith("iVBOR"), f"results: {[list(r.formats()) for r in execution.results]}")

    @check("ci.contexts")
    def _():
        context = sandbox.create_code_context(cwd="/tmp")
        sandbox.run_code("y = 'in context'", context=context)
        expect(sandbox.run_code("y", context=context).text == "'in context'", "context state")
        expect(sandbox.run_code("import os; os.getcwd()", context=context).text == "'/tmp'", "context cwd")
        expect(sandbox.run_code("'y' in globals()").text == "False", "contexts share state")

    @check("ci.javascript")
    def _():
        sandbox.run_code("let z = 20", language="js")
        execution = sandbox.run_code("z * 2 + 2", language="js")
        expect(execution.text == "42", f"js text: {execution.text!r} error: {execution.error}")

    @check("ci.commands_too")
    def _():
        expect(sandbox.commands.run("echo from-ci").stdout == "from-ci\n", "commands in a code-interpreter sandbox")

    sandbox.kill()


def attack():
    import e2b
    from e2b import Sandbox, AuthenticationException

    state = {}

    @check("attack.wrong_api_key")
    def _():
        status, _, body = agentbox("GET", "/v2/sandboxes", headers={"X-API-KEY": "e2b_deadbeef"})
        expect(status == 401 and json.loads(body)["code"] == 401, f"{status} {body[:200]!r}")
        status, _, body = agentbox("POST", "/v2/sandboxes", body=b"{}", headers={"Content-Type": "application/json"})
        expect(status == 401, f"no key: {status}")
        try:
            Sandbox.create(api_key="e2b_0123456789abcdef")
        except AuthenticationException:
            pass
        else:
            raise AssertionError("create with a wrong key succeeded")

    @check("attack.setup")
    def _():
        state["a"] = Sandbox.create(timeout=60)
        state["b"] = Sandbox.create(timeout=60)

    if "b" not in state:
        return
    a, b = state["a"], state["b"]

    def envd(path, body, sandbox_id, token, content_type="application/json"):
        headers = {"E2b-Sandbox-Id": sandbox_id, "E2b-Sandbox-Port": "49983", "Content-Type": content_type, "Connect-Protocol-Version": "1"}
        if token is not None:
            headers["X-Access-Token"] = token
        return agentbox("POST", path, body=body, headers=headers)

    @check("attack.other_sandbox_token")
    def _():
        marker = "/home/user/attack-marker"
        body = json.dumps({"process": {"cmd": "/bin/touch", "args": [marker]}}).encode()
        frame = b"\x00" + len(body).to_bytes(4, "big") + body
        status, _, _ = envd("/process.Process/Start", frame, b.sandbox_id, a._envd_access_token, "application/connect+json")
        expect(status in (401, 403), f"Start with another sandbox's token: {status}")
        status, _, _ = envd("/process.Process/Start", frame, b.sandbox_id, None, "application/connect+json")
        expect(status in (401, 403), f"Start without a token: {status}")
        status, _, _ = envd("/filesystem.Filesystem/ListDir", b'{"path":"/home/user"}', b.sandbox_id, a._envd_access_token)
        expect(status in (401, 403), f"ListDir with another sandbox's token: {status}")
        status, _, _ = agentbox(
            "GET", "/files?path=/home/user", headers={"E2b-Sandbox-Id": b.sandbox_id, "X-Access-Token": a._envd_access_token}
        )
        expect(status in (401, 403), f"/files with another sandbox's token: {status}")
        status, _, _ = agentbox(
            "POST", "/execute", body=b'{"code":"1"}',
            headers={"E2b-Sandbox-Id": b.sandbox_id, "X-Access-Token": a._envd_access_token, "Content-Type": "application/json"},
        )
        expect(status in (401, 403), f"/execute with another sandbox's token: {status}")
        expect(not b.files.exists(marker), "the refused command ran")

    @check("attack.bad_connect_bodies")
    def _():
        token = b._envd_access_token
        cases = [
            ("/process.Process/Start", b"\x00\x00\x00", "application/connect+json"),
            ("/process.Process/Start", b"\x00\xff\xff\xff\xffxx", "application/connect+json"),
            ("/process.Process/Start", b"\x00\x00\x00\x00\x05nope!", "application/connect+json"),
            ("/process.Process/Start", b"\x01\x00\x00\x00\x02{}", "application/connect+json"),
            ("/process.Process/Start", b"{}", "application/json"),
            ("/process.Process/SendSignal", b'{"process":{"pid":"x"},"signal":"SIGNAL_NOPE"}', "application/json"),
            ("/process.Process/SendInput", b'{"process":{"pid":1},"input":{"stdin":"!!notbase64"}}', "application/json"),
            ("/filesystem.Filesystem/Stat", b"[1,2,3]", "application/json"),
            ("/filesystem.Filesystem/Stat", b'{"path":"/home/user/../../../etc/shadow"}', "application/json"),
            ("/filesystem.Filesystem/ListDir", b'{"path":"/home/user","depth":"99999999999999999999"}', "application/json"),
            ("/filesystem.Filesystem/Nope", b"{}", "application/json"),
            ("/nope.Service/Call", b"{}", "application/json"),
        ]
        for path, body, content_type in cases:
            status, headers, answer = envd(path, body, b.sandbox_id, token, content_type)
            expect(400 <= status < 500 or status == 501, f"{path} {body[:40]!r}: {status} {answer[:200]!r}")
            if status != 501:
                expect("code" in json.loads(answer), f"{path}: not a Connect error: {answer[:200]!r}")
        expect(b.commands.run("echo still-up").stdout == "still-up\n", "the server stopped answering")

    @check("attack.oversized_bodies")
    def _():
        token = b._envd_access_token
        big = b"{" + b" " * (5 << 20) + b"}"
        status, _, _ = envd("/filesystem.Filesystem/Stat", big, b.sandbox_id, token)
        expect(status in (413, 429) or 400 <= status < 500, f"oversized unary body: {status}")
        status, _, _ = agentbox("POST", "/v2/sandboxes", body=b"{" + b" " * (2 << 20) + b"}", headers={"X-API-KEY": os.environ["E2B_API_KEY"]})
        expect(status == 413, f"oversized create body: {status}")
        status, _, body = agentbox(
            "POST", "/v2/sandboxes", body=b'{"timeout": 999999999}', headers={"X-API-KEY": os.environ["E2B_API_KEY"], "Content-Type": "application/json"}
        )
        expect(status == 400, f"absurd timeout: {status} {body[:100]!r}")

    @check("attack.unknown_sandbox")
    def _():
        status, _, _ = envd("/filesystem.Filesystem/Stat", b'{"path":"/"}', "no-such-sandbox", "x")
        expect(status == 502, f"unknown sandbox: {status}")

    a.kill()
    b.kill()


mode = sys.argv[1] if len(sys.argv) > 1 else "core"
{"core": core, "interpreter": interpreter, "attack": attack}[mode]()
print(json.dumps(results))
