"""AWS's ``sagemaker-mlflow`` plugin, heard only when the tracking URI is a SageMaker ARN.

The plugin reaches the registry the stack provisions (``MlflowTrackingUri`` empty): the
tracking URI is the server's ARN, its ``arn`` stores sign every request with SigV4, and its
request-header provider adds the server's ARN to each one. That provider is always
``in_context()``, and for any other URI it raises, which MLflow logs as a warning on EVERY
request. The container images of the registry-calling functions carry the plugin whatever
the URI (one image serves both choices of the template), so under a plain-URI registry it
must step aside: ``quiet_outside_arn`` makes its providers in context only while the
tracking URI is an ARN. Without the plugin installed it does nothing.
"""

from __future__ import annotations

PLUGIN_MODULE = "sagemaker_mlflow"
_GUARDED = "_streamflow_arn_only"


def is_arn(uri: str | None) -> bool:
    """A SageMaker MLflow tracking URI (``arn:<partition>:sagemaker:…``), which only the plugin can reach."""
    return bool(uri) and str(uri).startswith("arn:")


def quiet_outside_arn() -> int:
    """Guard the plugin's request-header providers in MLflow's registry (idempotent); how many
    it guarded this call. Decided per request, so ``mlflow.set_tracking_uri`` later is honoured."""
    import mlflow
    from mlflow.tracking.request_header.registry import _request_header_provider_registry

    guarded = 0
    for provider in _request_header_provider_registry:
        if type(provider).__module__.split(".")[0] != PLUGIN_MODULE or getattr(provider, _GUARDED, False):
            continue
        provider.in_context = lambda: is_arn(mlflow.get_tracking_uri())  # type: ignore[method-assign]
        setattr(provider, _GUARDED, True)
        guarded += 1
    return guarded
