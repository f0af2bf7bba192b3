"""boto3 clients kept for the life of a process, one per endpoint.

A Lambda execution environment reuses its clients across invocations (their connection pools
are much of a warm call's speed), but which endpoint a client talks to comes from the
environment: the CLI, a benchmark or a test may point ``AWS_ENDPOINT_URL`` elsewhere later in
the same process, and a client cached once would keep calling the old endpoint."""

from __future__ import annotations

import functools
import os
import threading
from typing import Callable, TypeVar

Client = TypeVar("Client")

_SHARED_SETTINGS = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_PROFILE")


def endpoint_key(service_endpoint_variable: str) -> tuple[str | None, ...]:
    """The settings that decide where a client of this service connects, and as whom."""
    return tuple(os.environ.get(name) for name in (service_endpoint_variable, *_SHARED_SETTINGS))


def per_endpoint(service_endpoint_variable: str) -> Callable[[Callable[[], Client]], Callable[[], Client]]:
    """Cache a client factory per :func:`endpoint_key` (``cache_clear`` empties it)."""

    def decorate(factory: Callable[[], Client]) -> Callable[[], Client]:
        clients: dict[tuple[str | None, ...], Client] = {}
        lock = threading.Lock()  # boto3's default session is not safe to build clients on from many threads

        @functools.wraps(factory)
        def client() -> Client:
            key = endpoint_key(service_endpoint_variable)
            found = clients.get(key)
            if found is not None:
                return found
            with lock:
                if key not in clients:
                    clients[key] = factory()
                return clients[key]

        client.cache_clear = clients.clear  # type: ignore[attr-defined]
        return client

    return decorate
