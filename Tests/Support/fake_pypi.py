"""A Python package index for the agent-install tests: the JSON API (`/pypi/{package}[/{version}]/json`) of one package,
`openai-codex-cli-bin`, whose wheels hold `codex_cli_bin/bin/codex` (a shell script answering `--version` with
`codex-cli VERSION`) and 3 MiB of padding, served slowly (~1.5 s) so that installs overlap. Versions: 1.0.0 and 2.0.0
(the newest); 6.6.6 is listed with a wrong SHA-256; anything else is 404. Each version also lists a wheel for another
machine first. GET /count answers how often each wheel was downloaded; GET /hold keeps each download after its first chunk
until GET /release. Prints its port on the first line.
Usage: python3 fake_pypi.py"""
import hashlib, io, os, threading, time, zipfile
from json_server import JSONHandler, serve

PACKAGE = "openai-codex-cli-bin"
PADDING = os.urandom(3 << 20)
downloads = {}
lock = threading.Lock()
gate = threading.Event()
gate.set()


def wheel(version):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo("codex_cli_bin/bin/codex")
        info.external_attr = 0o755 << 16
        archive.writestr(info, "#!/bin/sh\necho 'codex-cli %s'\n" % version)
        archive.writestr("codex_cli_bin/padding.bin", PADDING)
    return out.getvalue()


WHEELS = {v: wheel(v) for v in ("1.0.0", "2.0.0", "6.6.6")}


def name(version, platform="manylinux_2_17_x86_64.manylinux2014_x86_64"):
    return "openai_codex_cli_bin-%s-py3-none-%s.whl" % (version, platform)


class Handler(JSONHandler):
    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if self.path == "/count":
            with lock:
                return self.answer(200, dict(downloads))
        if self.path in ("/hold", "/release"):
            # /hold keeps downloads after their first chunk until /release: a test's install stays under way.
            (gate.clear if self.path == "/hold" else gate.set)()
            return self.answer(200, {"held": not gate.is_set()})
        if len(parts) in (3, 4) and parts[0] == "pypi" and parts[1] == PACKAGE and parts[-1] == "json":
            version = parts[2] if len(parts) == 4 else "2.0.0"
            if version not in WHEELS:
                return self.answer(404, {"message": "Not Found"})
            digest = hashlib.sha256(WHEELS[version]).hexdigest() if version != "6.6.6" else "0" * 64
            port = self.server.server_address[1]
            urls = [
                {"filename": name(version, "macosx_11_0_arm64"), "url": "http://127.0.0.1:%d/files/none" % port, "size": 1,
                 "digests": {"sha256": "0" * 64}, "packagetype": "bdist_wheel"},
                {"filename": name(version), "url": "http://127.0.0.1:%d/files/%s" % (port, name(version)),
                 "size": len(WHEELS[version]), "digests": {"sha256": digest}, "packagetype": "bdist_wheel"},
            ]
            return self.answer(200, {"info": {"name": PACKAGE, "version": version}, "urls": urls})
        if len(parts) == 2 and parts[0] == "files":
            version = next((v for v in WHEELS if name(v) == parts[1]), None)
            if version is None:
                return self.answer(404, {"message": "Not Found"})
            with lock:
                downloads[parts[1]] = downloads.get(parts[1], 0) + 1
            body = WHEELS[version]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            held = False
            for start in range(0, len(body), 128 << 10):
                self.wfile.write(body[start:start + (128 << 10)])
                time.sleep(0.06)
                if not held:  # held once per download, for a minute at most
                    held = True
                    gate.wait(60)
            return
        self.answer(404, {"message": "Not Found"})


serve(Handler)
