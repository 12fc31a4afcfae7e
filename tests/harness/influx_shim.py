"""Put InfluxDB 1.x behind the v2 write route, as InfluxDB 1.8+ serves it natively.

``POST /api/v2/write?bucket=db[/rp]&precision=ns|us|ms|s`` becomes
``POST /write?db=db&rp=rp&precision=n|u|ms|s`` with the same body (gzip is
decoded first). Every other request passes through unchanged. This is the
only stand-in in the storage path: the engine, the line-protocol parser and
InfluxQL are the real server's.
"""

from __future__ import annotations

import gzip
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PRECISION = {"ns": "n", "us": "u", "ms": "ms", "s": "s"}


def _handler(upstream: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:  # quiet
            return

        def _forward(self, method: str, path: str, body: bytes | None) -> None:
            request = urllib.request.Request(upstream + path, data=body, method=method)
            for name in ("Content-Type", "Authorization", "Accept"):
                if self.headers.get(name):
                    request.add_header(name, self.headers[name])
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    status, payload, ctype = (
                        response.status,
                        response.read(),
                        response.headers.get("Content-Type"),
                    )
            except urllib.error.HTTPError as exc:
                status, payload, ctype = exc.code, exc.read(), exc.headers.get("Content-Type")
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _body(self) -> bytes:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            return body

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            body = self._body()
            if url.path == "/api/v2/write":
                query = urllib.parse.parse_qs(url.query)
                db, _, rp = query.get("bucket", [""])[0].partition("/")
                params = {"db": db, "precision": PRECISION.get(query.get("precision", ["ns"])[0], "n")}
                if rp:
                    params["rp"] = rp
                self._forward("POST", "/write?" + urllib.parse.urlencode(params), body)
            else:
                self._forward("POST", self.path, body)

        def do_GET(self) -> None:
            self._forward("GET", self.path, None)

    return Handler


class InfluxShim:
    def __init__(self, upstream: str, port: int) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(upstream.rstrip("/")))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="influx-shim")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> InfluxShim:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
