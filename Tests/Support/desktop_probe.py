#!/usr/bin/env python3
"""Checks for the desktop end-to-end tests, with the standard library only.

  desktop_probe.py diff A.png B.png   -> {"width", "height", "changed", "bbox": [x0, y0, x1, y1] or null}
  desktop_probe.py info A.png         -> {"width", "height", "colors"} (distinct colours, at most 1000 counted)
  desktop_probe.py rfb URL            -> {"status", "protocol", "first"}: a WebSocket handshake to URL, then the first
                                         binary message (a VNC server's greeting, "RFB 003.008\\n")
"""
import base64
import json
import os
import socket
import struct
import sys
import urllib.parse
import zlib


def read_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, "bad CRC in " + kind.decode()
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color == 2, "expected 8-bit RGB"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * 3
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - 3] if i >= 3 else 0
            up = previous[i]
            upleft = previous[i - 3] if i >= 3 else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - upleft
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
                predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else upleft)
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, rows


def main():
    command = sys.argv[1]
    if command == "diff":
        wa, ha, a = read_png(sys.argv[2])
        wb, hb, b = read_png(sys.argv[3])
        assert (wa, ha) == (wb, hb), "sizes differ"
        changed, box = 0, None
        for y in range(ha):
            if a[y] == b[y]:
                continue
            for x in range(wa):
                if a[y][3 * x:3 * x + 3] != b[y][3 * x:3 * x + 3]:
                    changed += 1
                    box = [x, y, x, y] if box is None else [min(box[0], x), min(box[1], y), max(box[2], x), max(box[3], y)]
        print(json.dumps({"width": wa, "height": ha, "changed": changed, "bbox": box}))
    elif command == "info":
        width, height, rows = read_png(sys.argv[2])
        colors = set()
        for row in rows:
            for x in range(0, len(row), 3):
                colors.add(row[x:x + 3])
                if len(colors) >= 1000:
                    break
        print(json.dumps({"width": width, "height": height, "colors": len(colors)}))
    elif command == "rfb":
        url = urllib.parse.urlparse(sys.argv[2])
        connection = socket.create_connection((url.hostname, url.port), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        path = url.path + ("?" + url.query if url.query else "")
        connection.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = connection.recv(4096)
            if not chunk:
                break
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
        protocol = next((l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("sec-websocket-protocol:")), None)
        first = None
        if status == 101:
            buffer = rest
            while len(buffer) < 2 or len(buffer) < 2 + (buffer[1] & 0x7F):
                chunk = connection.recv(4096)
                if not chunk:
                    break
                buffer += chunk
            if len(buffer) >= 2:
                opcode, length = buffer[0] & 0x0F, buffer[1] & 0x7F
                payload = buffer[2:2 + length]
                first = payload.decode("latin-1") if opcode == 2 else f"opcode {opcode}: {payload[2:].decode('latin-1', 'replace')}"
        print(json.dumps({"status": status, "protocol": protocol, "first": first}))
        connection.close()


main()
