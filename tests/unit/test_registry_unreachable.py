"""An unreachable registry is told apart from a registry that answered with an error by the
exception chain, not by words in a message: the first is retried (``RegistryUnavailable``),
the second fails the step at once."""

from __future__ import annotations

import pytest
import requests
from mlflow.exceptions import MlflowException

from streamflow.steps import RegistryUnavailable, registry_call, unreachable


def _as_mlflow_raises(inner: Exception):
    """What mlflow.utils.rest_utils does: its own exception raised inside ``except``."""
    def call():
        try:
            raise inner
        except Exception as e:
            raise MlflowException(f"API request to http://registry failed with exception {e}")  # noqa: B904 (as MLflow does)
    return call


@pytest.mark.parametrize("inner", [requests.exceptions.ConnectionError("refused"),
                                   requests.exceptions.ReadTimeout("slow"), ConnectionRefusedError(111, "refused"),
                                   TimeoutError("timed out")])
def test_a_connection_failure_in_the_chain_is_unavailable(inner):
    with pytest.raises(RegistryUnavailable) as caught:
        registry_call(_as_mlflow_raises(inner))
    assert unreachable(caught.value.__cause__)


def test_an_answer_from_the_registry_is_not_retried_even_if_it_says_connection():
    """The old rule matched "Connection" in the message: a 400 naming a connection was retried."""
    def answered():
        raise MlflowException("Connection alias 'x' is invalid", error_code="INVALID_PARAMETER_VALUE")

    with pytest.raises(MlflowException):
        registry_call(answered)
    assert not unreachable(MlflowException("Max retries exceeded, Connection reset"))


def test_other_errors_pass_through_and_results_are_returned():
    with pytest.raises(KeyError):
        registry_call(lambda: {}["x"])
    assert registry_call(lambda a, b=0: a + b, 2, b=3) == 5


def test_a_cyclic_chain_ends():
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert not unreachable(a)
