#!/usr/bin/env python3
"""Keystroke echo round trip over a shell's WebSocket (issue 5's benchmark).

Opens a shell running `cat` (the terminal echoes each typed byte at once), then sends one byte per WebSocket frame
and waits for its echo, N times. Prints p50/p95/p99/min in milliseconds. Standard library only (the WebSocket
handshake and framing are a few lines). Usage: shell_echo.py ENDPOINT [N]
"""
import base64, json, os, socket, statistics, struct, sys, time, urllib.request

endpoint = sys.argv[1].rstrip("/")
count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
host, port = endpoint.split("//")[1].split(":")

def call(method, path, body=None):
    request = urllib.request.Request(endpoint + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request) as response:
        text = response.read()
        return json.loads(text) if text else None

call("PUT", "/v1/workspaces/echo-bench", {})
shell = call("POST", "/v1/workspaces/echo-bench/shells", {"command": "/bin/cat"})
sock = socket.create_connection((host, int(port)))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
key = base64.b64encode(os.urandom(16)).decode()
sock.sendall((f"GET /v1/workspaces/echo-bench/shells/{shell['id']}/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
head = b""
while b"\r\n\r\n" not in head:
    head += sock.recv(1)
assert b" 101 " in head.split(b"\r\n")[0], head

def send(payload, opcode=2):
    mask = os.urandom(4)
    sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

def receive():
    first, second = sock.recv(2, socket.MSG_WAITALL)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", sock.recv(2, socket.MSG_WAITALL))[0]
    elif length == 127:
        length = struct.unpack("!Q", sock.recv(8, socket.MSG_WAITALL))[0]
    return first & 0x0F, sock.recv(length, socket.MSG_WAITALL) if length else b""

samples = []
for i in range(count + 50):
    byte = bytes([ord("a") + i % 26])
    start = time.perf_counter()
    send(byte)
    while True:
        opcode, payload = receive()
        if opcode == 2 and byte in payload:
            break
    if i >= 50:  # warm-up
        samples.append((time.perf_counter() - start) * 1000)
call("DELETE", f"/v1/workspaces/echo-bench/shells/{shell['id']}")
samples.sort()
pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
print(f"| keystroke echo over the shell WebSocket ({count} keystrokes) | p50 {statistics.median(samples):.3f} ms | "
      f"p95 {pick(0.95):.3f} ms | p99 {pick(0.99):.3f} ms | min {samples[0]:.3f} ms |")
