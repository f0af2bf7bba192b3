"""moto's AWS emulator served by waitress: HTTP/1.1 keep-alive and a fixed thread pool.

moto's own ``ThreadedMotoServer`` is werkzeug's development server, which answers every
request with ``Connection: close`` and starts a thread per connection: each boto3 call a
function made paid a TCP connect and a thread start on top of moto's work (a DynamoDB
``GetItem`` 2.8 ms → 1.9 ms p50 with keep-alive, measured side by side). The application
is moto's unchanged (``DomainDispatcherApplication``).

One fix to waitress 3.0's HTTP handling, so every S3 client works: a request with
``Expect: 100-continue`` and no body (``Content-Length: 0``, what botocore sends for an
empty ``PutObject``) was parsed completely, then waitress sent ``100 Continue`` and marked
it incomplete again, waiting forever for a body that never comes (``aws s3 cp`` of an empty
file hung). Such a request now gets its ``100 Continue`` and then its answer at once. Not
the answer alone, though RFC 9110 §10.1.1 allows it when no content is coming: the AWS
CLI's botocore (1.43.62 in awscli 1.46) keeps the status of an answer that came instead of
the 100 and applies it to the next ``Expect`` request on the same connection, which then
waits 60 s for a read timeout (``aws s3 cp --recursive`` of a folder with an empty file
took 61 s instead of one). Chunked bodies
(``Transfer-Encoding: chunked``) are waitress' own; ``aws-chunked`` content encoding
(signed or unsigned, with trailing checksums) is decoded by moto's S3.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable

# Generous: a Lambda invoked over HTTP holds a thread while its handler calls back into
# the emulator (S3 → ingest → StartExecution, Step Functions → tasks → S3/DynamoDB).
THREADS = 48
# Every warm worker keeps its boto3 connections open; waitress stops accepting new
# connections at this limit, so it must sit far above what a busy stack holds.
CONNECTION_LIMIT = 2000
MAX_REQUEST_BODY = 4 * 1024**3  # S3 uploads of big months; waitress' default is 1 GiB


def _with_raw_uri(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """moto reads the undecoded path from ``RAW_URI`` (werkzeug's name); waitress calls it
    ``REQUEST_URI``. Without it an S3 key with an encoded ``/`` would be decoded."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.setdefault("RAW_URI", environ.get("REQUEST_URI", ""))
        return app(environ, start_response)

    return wrapped


def _channel_class() -> type:
    """waitress' channel, whose ``100 Continue`` leaves a request with no body complete."""
    from waitress.channel import HTTPChannel

    class Channel(HTTPChannel):
        def send_continue(self) -> None:
            completed = self.request.completed  # waitress sets it False: "the body comes next"
            super().send_continue()
            if self.request.body_rcv is None:  # Content-Length 0 (or none), not chunked: no body comes
                self.request.completed = completed

    return Channel


class MotoServer:
    """moto on ``host:port`` in a background thread; ``stop`` closes it. ``wrap`` wraps
    moto's WSGI application (the persistence layer watches write requests there)."""

    def __init__(self, host: str, port: int,
                 wrap: Callable[[Callable[..., Iterable[bytes]]], Callable[..., Iterable[bytes]]] | None = None):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from waitress import create_server

        from . import moto_fast_get, moto_fast_write

        app = moto_fast_get.wrap(DomainDispatcherApplication(create_backend_app))  # GetItem: no Flask
        app = _with_raw_uri(moto_fast_write.wrap(app))  # BatchWriteItem of plain puts: no Flask
        if wrap is not None:  # e.g. persistence's write tracking
            app = wrap(app)
        self._server = create_server(
            app, host=host, port=port, threads=THREADS, connection_limit=CONNECTION_LIMIT,
            max_request_body_size=MAX_REQUEST_BODY, channel_timeout=900, asyncore_use_poll=True,
            ident="moto",
        )
        self._server.channel_class = _channel_class()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.run, name="moto", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close every connection (the loop ends with an empty map) and
        let the worker threads finish what they are doing (up to 5 s).

        The connections are closed by the loop's own thread, woken through waitress' trigger:
        closed from here, the loop noticed only when its poll timed out (1 s), and every
        stop, each unit test's server and each `streamflow down`, waited that second out."""
        from waitress import wasyncore

        self._server.task_dispatcher.shutdown(timeout=5)
        if self._thread is not None and self._thread.is_alive():
            try:
                self._server.trigger.pull_trigger(lambda: wasyncore.close_all(self._server._map))
            except OSError:  # the trigger is closed already: the loop is ending; what is left closes below
                pass
            else:
                self._thread.join(timeout=10)
        wasyncore.close_all(self._server._map)  # nothing left after the loop's own; a loop never started
        if self._thread is not None:
            self._thread.join(timeout=10)
