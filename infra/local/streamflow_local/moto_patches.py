"""Fixes to moto that the local stack needs, each small and pinned with moto's version.

* ``SendTaskFailure`` drops its ``cause`` in moto 5.2.5's HTTP layer (the backend accepts
  it); the approval gate puts the rejection reason there, so pass it through.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure
