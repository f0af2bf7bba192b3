"""A registry that needs credentials: HTTP basic auth in front of the stack's `mlflow server`.

Requests with the right ``Authorization`` header are forwarded to the server unchanged (Host
rewritten to the server's); any other gets 401, as an MLflow server behind an authenticating
gateway answers, and is counted, so a test can say that nobody without credentials (the API)
asked the registry anything.
"""

from __future__ import annotations

import base64
import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from streamflow_local.config import free_port

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length", "host"}


class BasicAuthProxy:
    def __init__(self, upstream: str, username: str, password: str, host: str = "127.0.0.1"):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self.port = free_port()
        self.url = f"http://{host}:{self.port}"
        self.denied: list[str] = []  # "METHOD path" of every request refused for want of credentials
        self.forwarded = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _body(self) -> bytes | None:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else None

            def _handle(self) -> None:
                body = self._body()
                if self.headers.get("Authorization") != proxy.expected:
                    with proxy._lock:
                        proxy.denied.append(f"{self.command} {self.path}")
                    payload = b'{"error_code": "UNAUTHENTICATED", "message": "credentials required"}'
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Host"] = proxy.upstream.netloc
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=300)
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                finally:
                    connection.close()
                with proxy._lock:
                    proxy.forwarded += 1
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

        return Handler

    def __enter__(self) -> BasicAuthProxy:  # noqa: PYI034 - a test helper, not subclassed
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
