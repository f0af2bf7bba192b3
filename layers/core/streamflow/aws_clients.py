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


def fixed_user_agent(component: str) -> str:
    """A User-Agent for ``botocore.config.Config(user_agent=...)``: set once, so botocore
    sends it as it is instead of assembling its default string (SDK, OS, language,
    execution environment, config and feature metadata) twice for every request, which was
    ≈ 0.28 of the 1.1 ms botocore spends on a ``GetItem`` (``bench/README.md`` §2g). Names
    this component and the SDK versions, which is what the header is read for."""
    import platform

    import boto3
    import botocore

    return (f"{component} Boto3/{boto3.__version__} Botocore/{botocore.__version__} "
            f"Python/{platform.python_version()}")
