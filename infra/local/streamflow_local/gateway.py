"""A local API Gateway: HTTP on 127.0.0.1 → REST (v1) proxy event → the API function.

Inside the local stack it hands the event straight to the executor's warm execution
environment for the deployed function (as API Gateway's Lambda integration, or
``sam local start-api``, does); on its own it calls the Lambda ``Invoke`` API of the
endpoint in ``AWS_ENDPOINT_URL``. Either way the function runs exactly as deployed.
"""

from __future__ import annotations

import base64
import hmac
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config

from .config import StackConfig


MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's (REST) request payload limit


class PayloadTooLarge(ValueError):
    pass


def read_body(stream: Any, headers: Any, limit: int = MAX_PAYLOAD_BYTES) -> bytes:
    """The request's body, sent with a ``Content-Length`` or in chunks (``Transfer-Encoding:
    chunked``: curl's ``-H 'Transfer-Encoding: chunked'``, a streamed ``requests`` body),
    which had reached the function as no body at all; over ``limit`` bytes it is refused,
    as API Gateway refuses a payload over 10 MB."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        body = bytearray()
        while True:
            size = int(stream.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while stream.readline(1024) not in (b"\r\n", b"\n", b""):  # trailers, then the blank line
                    pass
                return bytes(body)
            if len(body) + size > limit:
                raise PayloadTooLarge(f"the request body is over API Gateway's {limit:,}-byte limit")
            body += stream.read(size)
            stream.readline(1024)  # the CRLF after each chunk
    length = int(headers.get("Content-Length") or 0)
    if length > limit:
        raise PayloadTooLarge(f"the request body ({length:,} bytes) is over API Gateway's {limit:,}-byte limit")
    return stream.read(length) if length else b""


def without_stage(raw_path: str, stage: str) -> str:
    """``/Prod/predict`` → ``/predict``: on AWS the API's address ends in its stage (the
    ``ApiUrl`` output), so a URL built from it works here too; paths without it work as well."""
    prefix = f"/{stage}"
    if raw_path == prefix or raw_path.startswith((prefix + "/", prefix + "?")):
        rest = raw_path[len(prefix):]
        return rest if rest.startswith("/") else "/" + rest
    return raw_path


def proxy_event(method: str, raw_path: str, headers: dict[str, str], body: bytes, stage: str = "Prod") -> dict[str, Any]:
    """The event API Gateway's Lambda proxy integration sends for ``/{proxy+}``."""
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    text_body: str | None
    is_base64 = False
    try:
        text_body = body.decode("utf-8") if body else None
    except UnicodeDecodeError:
        text_body, is_base64 = base64.b64encode(body).decode(), True
    path = parts.path or "/"
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "body": text_body,
        "isBase64Encoded": is_base64,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1"},
        },
    }


Invoke = Callable[[str, dict[str, Any]], tuple[str, bool]]
"""(function name, event) → (response payload as JSON text, the function errored)."""


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up mid-answer (a load tool ending its run) is not an error of
        # the gateway: no traceback in the stack's log for it.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class LocalApiGateway:
    def __init__(self, config: StackConfig, invoke: Invoke | None = None):
        self.config = config
        self._invoke = invoke or self._invoke_over_api
        self._lambda = boto3.client(
            "lambda",
            endpoint_url=config.aws_endpoint,
            region_name=config.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(read_timeout=900, retries={"max_attempts": 1}, max_pool_connections=64),
        )
        self._server: ThreadingHTTPServer | None = None
        self._api: dict[str, Any] = {}
        self._api_mtime: float | None = None

    def _invoke_over_api(self, function: str, event: dict[str, Any]) -> tuple[str, bool]:
        response = self._lambda.invoke(FunctionName=function, Payload=json.dumps(event))
        return response["Payload"].read().decode() or "null", bool(response.get("FunctionError"))

    def api(self) -> dict[str, Any]:
        """The deployed API (function, routes, key), re-read when deploy rewrites it."""
        try:
            mtime = self.config.stack_file.stat().st_mtime
            if mtime != self._api_mtime:
                self._api = json.loads(self.config.stack_file.read_text()).get("api", {})
                self._api_mtime = mtime
        except (OSError, ValueError):
            self._api, self._api_mtime = {}, None
        return self._api

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        api = self.api()
        function = api.get("function")
        if api.get("api_key_required"):
            sent = {k.lower(): v for k, v in headers.items()}.get("x-api-key")
            if not sent or not hmac.compare_digest(sent, api.get("api_key", "")):
                # What API Gateway answers for a missing or wrong key.
                return 403, {"Content-Type": "application/json"}, b'{"message":"Forbidden"}'
        if function is None:
            return 502, {"Content-Type": "application/json"}, json.dumps(
                {"error": {"code": "not_deployed", "message": "no API function deployed; run `streamflow deploy`"}}
            ).encode()
        stage = api.get("stage") or "Prod"
        raw_payload, errored = self._invoke(function, proxy_event(method, without_stage(path, stage), headers, body, stage))
        payload = json.loads(raw_payload)
        if errored or not isinstance(payload, dict) or "statusCode" not in payload:
            return 502, {"Content-Type": "application/json"}, json.dumps(
                {"error": {"code": "bad_gateway", "message": "the API function failed", "detail": payload}}
            ).encode()
        out_headers = {k: str(v) for k, v in (payload.get("headers") or {}).items()}
        for key, values in (payload.get("multiValueHeaders") or {}).items():
            out_headers[key] = ", ".join(str(v) for v in values)
        raw = payload.get("body") or ""
        data = base64.b64decode(raw) if payload.get("isBase64Encoded") else raw.encode("utf-8")
        return int(payload["statusCode"]), out_headers, data

    def serve(self) -> ThreadingHTTPServer:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body leave in two writes; with Nagle on, a keep-alive client's
            # delayed ACK holds the second for ~40 ms.
            disable_nagle_algorithm = True

            def _any(self) -> None:
                try:
                    body = read_body(self.rfile, self.headers)
                except PayloadTooLarge as exc:  # what API Gateway does with it: refuse, unread
                    self.close_connection = True
                    status, headers = 413, {"Content-Type": "application/json", "Connection": "close"}
                    data = json.dumps({"error": {"code": "payload_too_large", "message": str(exc)}}).encode()
                else:
                    try:
                        status, headers, data = gateway.handle(self.command, self.path, dict(self.headers.items()), body)
                    except Exception as exc:  # the gateway itself must answer in JSON too
                        status, headers = 502, {"Content-Type": "application/json"}
                        data = json.dumps({"error": {"code": "bad_gateway", "message": str(exc)}}).encode()
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def __getattr__(self, name: str) -> Any:
                # Every method (TRACE included) reaches the function, which answers in JSON;
                # http.server would otherwise send its own HTML 501.
                if name.startswith("do_"):
                    return self._any
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:  # keep the stack log quiet
                pass

        server = _Server((self.config.host, self.config.api_port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="api-gateway", daemon=True).start()
        return server

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
