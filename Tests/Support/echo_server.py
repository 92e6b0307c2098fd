"""The tests' server inside a workspace: HTTP/1.1 and WebSocket echo on 127.0.0.1:PORT (standard library only).

HTTP: answers `{METHOD} {target} {x-test header or -} ` followed by the request body, with status 201 for POST,
200 otherwise, and the headers `x-answer: yes` and `content-type: text/plain`. `/redirect` answers 302 to `/there`;
`/slow/SECONDS` answers after that long. `/switch` answers `101 Switching Protocols` (asked for by nobody) and then
`SMUGGLED`; `/cookie` sets cookies with `Path` and `Domain`; `/headers` answers the request's header lines.
WebSocket (an Upgrade request): first sends `path {target} proto {offered subprotocols}`, then echoes every text
message as `echo:{text}` and every binary message as it is. Usage: python3 echo_server.py PORT"""
import asyncio, base64, hashlib, sys


def frame(opcode, data):
    n = len(data)
    if n < 126:
        head = bytes([0x80 | opcode, n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big")
    return head + data


async def websocket(reader, writer, target, headers):
    key = headers["sec-websocket-key"]
    accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    offered = headers.get("sec-websocket-protocol")
    reply = f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    if offered:
        reply += f"Sec-WebSocket-Protocol: {offered.split(',')[0].strip()}\r\n"
    writer.write((reply + "\r\n").encode())
    writer.write(frame(1, f"path {target} proto {offered}".encode()))
    await writer.drain()
    while True:
        first, second = await reader.readexactly(2)
        opcode, length = first & 0x0F, second & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        mask = await reader.readexactly(4) if second & 0x80 else b"\0\0\0\0"
        data = bytes(byte ^ mask[i % 4] for i, byte in enumerate(await reader.readexactly(length)))
        if opcode == 8:
            writer.write(frame(8, data[:2]))
            await writer.drain()
            return
        if opcode == 9:
            writer.write(frame(10, data))
        elif opcode == 1:
            writer.write(frame(1, b"echo:" + data))
        elif opcode == 2:
            writer.write(frame(2, data))
        await writer.drain()


async def handle(reader, writer):
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, target, _ = head[0].split(" ", 2)
            headers = {}
            for line in head[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            if headers.get("upgrade", "").lower() == "websocket":
                await websocket(reader, writer, target, headers)
                break
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    chunk = await reader.readexactly(size + 2)
                    if size == 0:
                        break
                    body += chunk[:-2]
            else:
                body = await reader.readexactly(int(headers.get("content-length", "0")))
            if target.startswith("/slow/"):
                await asyncio.sleep(float(target.split("/")[2]))
            if target == "/switch":
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: other\r\n\r\nSMUGGLED")
                await writer.drain()
                continue
            if target == "/cookie":
                writer.write(
                    b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/; HttpOnly\r\nSet-Cookie: b=2; Domain=example.com; path=/v1\r\n"
                    b"Set-Cookie: c=3\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                continue
            if target == "/headers":
                text = "\n".join(head[1:]).encode()
                writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(text)}\r\n\r\n".encode() + text)
                await writer.drain()
                continue
            if target == "/redirect":
                writer.write(b"HTTP/1.1 302 Found\r\nLocation: /there\r\nContent-Length: 0\r\n\r\n")
            else:
                text = f"{method} {target} {headers.get('x-test', '-')} ".encode() + body
                status = "201 Created" if method == "POST" else "200 OK"
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nX-Answer: yes\r\nContent-Length: {len(text)}\r\n\r\n".encode()
                    + (b"" if method == "HEAD" else text))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()


asyncio.run(main())
