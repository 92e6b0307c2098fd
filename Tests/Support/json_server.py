"""What the tests' small HTTP servers share: a handler base that answers JSON and stays quiet, and `serve`, which
listens on a free loopback port, prints it on the first line (what the Swift tests read) and serves until killed."""
import http.server, json, signal

# The test runner may start us with SIGTERM blocked (a mask inherited from its thread): let it end us.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})


class JSONHandler(http.server.BaseHTTPRequestHandler):
    def body(self):
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def answer(self, status, value, content_type="application/json"):
        out = value if isinstance(value, bytes) else json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *arguments):
        pass


def serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
