"""A throw-away `agentbox serve` for the benchmark scripts: a fresh data directory, a token, the port it reports,
JSON calls to it, and everything removed afterwards (its disk pool unmounted first, also after a stop that left it
mounted, as a kill does)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request


def unmount_under(directory):
    """Lazily unmounts every mount below `directory`, the deepest first (a pool a killed server left mounted)."""
    with open("/proc/self/mountinfo") as table:
        points = [fields[4] for fields in map(str.split, table) if fields[4].startswith(directory.rstrip("/") + "/")]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


class ScratchServer:
    """`with ScratchServer(binary, ["--disk-pool", "none"]) as server: server.call("PUT", "/v1/workspaces/a", {})`."""

    def __init__(self, binary, arguments=(), prefix="agentbox-scratch."):
        self.binary, self.arguments, self.prefix = binary, list(arguments), prefix
        self.process = None

    def __enter__(self):
        self.data = tempfile.mkdtemp(prefix=self.prefix, dir="/var/tmp")
        os.chmod(self.data, 0o755)  # the workspaces' own uids pass through it
        self.log_path = self.data + ".log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [self.binary, "serve", "--port", "0", "--data-dir", self.data, "--token", "t", *self.arguments],
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.process.stdout.readline()
        while line and "listening" not in line:
            line = self.process.stdout.readline()
        if not line:
            self.__exit__(None, None, None)
            raise SystemExit(f"the server did not start: {self.binary} serve {' '.join(self.arguments)}")
        self.port = re.search(r":(\d+)", line).group(1)
        return self

    @property
    def pid(self):
        return self.process.pid

    def call(self, method, path, body=None, timeout=60):
        """The JSON answer of `method path` (None for an empty one); raises on an HTTP error."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": "Bearer t", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"null")

    def stop(self, timeout=120):
        """SIGTERM; returns the exit status and the seconds the stop took."""
        began = time.time()
        self.process.terminate()
        status = self.process.wait(timeout=timeout)
        return status, time.time() - began

    def log_tail(self, size=800):
        self.log.flush()
        with open(self.log_path) as text:
            return text.read()[-size:]

    def __exit__(self, *_):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()
        unmount_under(self.data)
        shutil.rmtree(self.data, ignore_errors=True)
        if os.path.exists(self.log_path):
            os.remove(self.log_path)
