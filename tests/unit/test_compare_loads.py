"""Compare loads the challenger and the champion from the registry while the holdout is read
(``steps._Loaded``): a model is waited for only when it is looked up, and a failed load
raises there, not nowhere."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from streamflow.steps import RegistryUnavailable, _Loaded


def test_the_roles_are_known_before_any_model_has_arrived():
    release = threading.Event()
    with ThreadPoolExecutor(max_workers=2) as pool:
        loaded = _Loaded({"challenger": pool.submit(lambda: release.wait(5) and "model-7"),
                          "champion": pool.submit(lambda: release.wait(5) and "model-3")})
        assert list(loaded) == ["challenger", "champion"] and len(loaded) == 2  # no wait here
        assert not any(future.done() for future in loaded._loading.values())
        release.set()
        assert dict(loaded.items()) == {"challenger": "model-7", "champion": "model-3"}


def test_a_failed_load_raises_where_the_model_is_looked_up():
    def unreachable():
        raise RegistryUnavailable("MLflow registry unreachable: connection refused")

    with ThreadPoolExecutor(max_workers=1) as pool:
        loaded = _Loaded({"champion": pool.submit(unreachable)})
        assert list(loaded) == ["champion"]
        with pytest.raises(RegistryUnavailable, match="unreachable"):
            loaded["champion"]
