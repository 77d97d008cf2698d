"""HTTPS echo server for bottle's Docker tests: replies with what it received, as JSON.

Every request that arrived whole (request line, headers and the complete body) and every
websocket frame is also recorded as one JSON line on stdout, so a test can read from the
container's log what reached the upstream: a request cut mid-body is never recorded. A body over
1 MiB is recorded and echoed by its length and sha256 only.
"""
import base64
import hashlib
import http.server
import json
import ssl
import struct
import sys

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
RECORDED_BODY_LIMIT = 1 << 20


def record(entry):
    print(json.dumps(entry), flush=True)


class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def body(self):
        """The whole body, or None when the connection broke before it was complete."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size_line = self.rfile.readline()
                if not size_line:
                    return None
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                chunk = self.rfile.read(size + 2)
                if len(chunk) < size + 2:
                    return None
                if size == 0:
                    return data
                data += chunk[:size]
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        return data if len(data) == length else None

    def reply(self):
        if (self.headers.get("Upgrade") or "").lower() == "websocket":
            return self.websocket()
        try:
            body = self.body()
        except (OSError, ValueError):
            body = None
        if body is None:
            self.close_connection = True
            return
        # A large body (a whole model conversation) is recorded by its length and digest only.
        text = body.decode("utf-8", "replace") if len(body) <= RECORDED_BODY_LIMIT else ""
        digest = hashlib.sha256(body).hexdigest()
        record({"method": self.command, "path": self.path, "body": text,
                "length": len(body), "sha256": digest})
        payload = json.dumps({
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": text,
            "length": len(body),
            "sha256": digest,
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def __getattr__(self, name):
        # Any method, registered or not, is answered (and recorded) the same way.
        if name.startswith("do_"):
            return self.reply
        raise AttributeError(name)

    def websocket(self):
        """Accepts the upgrade (echoing the Authorization it saw in a header), then records and
        echoes each frame's payload until the client closes."""
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        record({"method": self.command, "path": self.path, "upgrade": "websocket"})
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("X-Seen-Authorization", self.headers.get("Authorization", ""))
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        try:
            while self.frame():
                pass
        except (OSError, EOFError):
            pass

    def frame(self):
        def exact(n):
            data = self.rfile.read(n)
            if len(data) < n:
                raise EOFError
            return data

        b0, b1 = exact(2)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", exact(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", exact(8))[0]
        mask = exact(4) if b1 & 0x80 else b"\0\0\0\0"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(exact(length)))
        opcode = b0 & 0x0F
        if opcode == 8:
            self.wfile.write(b"\x88\x00")
            return False
        record({"ws": self.path, "frame": payload.decode("utf-8", "replace")})
        if len(payload) < 126:
            self.wfile.write(bytes([0x80 | opcode, len(payload)]) + payload)
        return True

    def log_message(self, format, *args):
        sys.stderr.write("%s\n" % (format % args))


server = http.server.ThreadingHTTPServer(("0.0.0.0", 443), Echo)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain("/srv/cert.pem", "/srv/key.pem")
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
