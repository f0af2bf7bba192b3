"""Step Functions Distributed Map in the emulator: what moto 5.2.5 lacks, made as AWS does it.

moto's ASL interpreter runs a ``Map`` state whose ``ItemProcessor`` is
``Mode: DISTRIBUTED`` (``ExecutionType: STANDARD``): its ``ItemReader`` reads items from S3
(``s3:getObject`` of a JSON array or a CSV, ``s3:listObjectsV2``, ``ReaderConfig.MaxItems``,
JSONPath parameters), ``ItemSelector`` and ``MaxConcurrency`` work, each item's processor
calls the real Lambda handlers through the local executor, and ``ListMapRuns`` /
``DescribeMapRun`` answer with item counts. Two things are missing, and both matter to a
month processed shard by shard:

* **A failed item is ignored.** moto counts it, puts ``null`` in the results and lets the
  Map state succeed ("ToleratedFailure… declarations currently have no effect"). On AWS the
  Map Run fails with ``States.ExceedToleratedFailureThreshold`` when more items fail than
  ``ToleratedFailureCount`` / ``ToleratedFailurePercentage`` allow (none by default), so a
  shard that fails fails the month (and a ``Catch`` on the Map state sees it). Done so here.
* **No child executions.** On AWS every item runs as a child execution that
  ``ListExecutions(mapRunArn=…)`` lists with its status and start/stop dates (how
  ``streamflow status`` shows per-shard timings) and ``DescribeExecution`` describes with
  its input (the item, after ``ItemSelector``), error and cause (how a failed Map's
  ``<Map>NameShards`` step names the failed shard). moto runs items in threads and records
  nothing; each item is recorded here, ``ListExecutions`` answers for a map run
  (``statusFilter``, ``maxResults``) and ``DescribeExecution`` for a child's ARN.

Not patched (not used by the pipeline; see docs/architecture.md): ``ItemBatcher`` and
``ExecutionType: EXPRESS`` are refused by moto's parser, an integer
``ToleratedFailurePercentage`` does not parse (write ``5.0``), and ``ResultWriter`` writes
only the manifest (no ``SUCCEEDED_0.json``), so the pipeline's children write their own
records to S3 (``streamflow.shard_records``) and its Maps keep no results in the state.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

THRESHOLD_ERROR = "States.ExceedToleratedFailureThreshold"
THRESHOLD_CAUSE = "The specified tolerated failure threshold was exceeded"


def threshold_exceeded(failed: int, total: int, count: int, percentage: float) -> bool:
    """AWS's rule: with neither tolerance set, any failure fails the run; otherwise the run
    fails when a tolerance that is set is exceeded (a 0 stands for "not set")."""
    if failed == 0:
        return False
    if not count and not percentage:
        return True
    over_count = bool(count) and failed > count
    over_percentage = bool(percentage) and total > 0 and 100.0 * failed / total > percentage
    return over_count or over_percentage


_installed = False


def install() -> None:
    """Patch once per process (the stack and the tests call moto_patches.install again)."""
    global _installed
    if _installed:
        return
    _installed = True
    _failed_items_fail_the_run()
    _child_executions()
    _list_executions_of_a_map_run()
    _describe_a_child_execution()


def _failed_items_fail_the_run() -> None:
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
        DistributedIterationComponent,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = DistributedIterationComponent._map_run

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)
        record = eval_input.map_run_record
        items = record.item_counter
        failed = items.failed.get() + items.timed_out.get()
        if threshold_exceeded(failed, items.total.get(), int(record.tolerated_failure_count or 0),
                              float(record.tolerated_failure_percentage or 0.0)):
            env.stack.pop()  # the results moto collected are not the state's output
            raise FailureEventException(failure_event=FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
                event_type=HistoryEventType.MapRunFailed,
                event_details=EventDetails(executionFailedEventDetails=ExecutionFailedEventDetails(
                    error=THRESHOLD_ERROR, cause=THRESHOLD_CAUSE)),
            ))

    DistributedIterationComponent._map_run = map_run


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _child_executions() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker import (
        DistributedItemProcessorWorker,
    )
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded, ProgramError, ProgramStopped

    original = DistributedItemProcessorWorker._eval_job
    original_input = DistributedItemProcessorWorker._eval_input

    def eval_input(self: Any, env_frame: Any) -> None:
        original_input(self, env_frame)  # the item, through ItemSelector: the child's input
        child = getattr(self, "_streamflow_child", None)
        if child is not None:
            child["input"] = json.dumps(env_frame.states.get_input(), default=str)

    def eval_job(self: Any, env: Any, job: Any) -> None:
        record = self._map_run_record
        with _LOCK:
            children = record.__dict__.setdefault("streamflow_children", [])
        name = str(uuid.uuid4())
        prefix = record.map_state_machine_arn.replace(":stateMachine:", ":execution:", 1)
        child: dict[str, Any] = {"executionArn": f"{prefix}:{name}", "name": name,
                                 "stateMachineArn": record.map_state_machine_arn, "mapRunArn": record.map_run_arn,
                                 "index": job.job_index, "status": "RUNNING", "startDate": _now(),
                                 "input": json.dumps(job.job_input, default=str)}
        with _LOCK:
            children.append(child)
        status = "FAILED"
        self._streamflow_child = child  # a worker runs its jobs one after the other
        try:
            original(self, env, job)
            state = env.program_state()
            if isinstance(state, ProgramEnded):
                status = "SUCCEEDED"
            elif isinstance(state, ProgramStopped):
                status = "ABORTED"
            elif isinstance(state, ProgramError) and state.error:
                child["error"], child["cause"] = state.error.get("error"), state.error.get("cause")
        finally:
            child["status"], child["stopDate"] = status, _now()
            self._streamflow_child = None

    DistributedItemProcessorWorker._eval_job = eval_job
    DistributedItemProcessorWorker._eval_input = eval_input


_LOCK = threading.Lock()


def map_run_records(backend: Any) -> Iterator[Any]:
    """Every map run record of every execution the backend holds (the children ride on them);
    a restored execution has none (no interpreter: its map runs lived in it)."""
    for execution in backend._get_executions():
        worker = getattr(execution, "exec_worker", None)
        if worker is not None:
            yield from worker.env.map_run_record_pool_manager.get_all()


def _children(record: Any) -> list[dict[str, Any]]:
    with _LOCK:
        return [dict(c) for c in record.__dict__.get("streamflow_children", [])]


def children_of(backend: Any, map_run_arn: str) -> list[dict[str, Any]] | None:
    """The recorded child executions of a map run (item order), or None if no run has that ARN."""
    for record in map_run_records(backend):
        if record.map_run_arn == map_run_arn:
            return sorted(_children(record), key=lambda c: c["index"])
    return None


def child_by_arn(backend: Any, execution_arn: str) -> dict[str, Any] | None:
    """The recorded child execution with this ARN (any map run of any execution), or None."""
    for record in map_run_records(backend):
        for child in _children(record):
            if child["executionArn"] == execution_arn:
                return child
    return None


def _describe_a_child_execution() -> None:
    """``DescribeExecution`` of a Distributed Map's child (``…:execution:<machine>/<label>:<id>``),
    as AWS answers it: input, status, dates, the map run, and a failed child's error and cause."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.exceptions import ExecutionDoesNotExist
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.describe_execution

    def describe_execution(self: Any) -> Any:
        arn = self._get_param("executionArn") or ""
        if "/" not in arn.rsplit(":execution:", 1)[-1]:
            return original(self)  # a top-level execution: moto's own answer
        child = child_by_arn(self.stepfunction_backend, arn)
        if child is None:
            raise ExecutionDoesNotExist("Execution Does Not Exist: '" + arn + "'")
        answer = {k: child[k] for k in ("executionArn", "name", "stateMachineArn", "mapRunArn", "status",
                                         "startDate", "input") if k in child}
        for key in ("stopDate", "error", "cause"):
            if child.get(key) is not None:
                answer[key] = child[key]
        return ActionResult(answer)

    StepFunctionResponse.describe_execution = describe_execution


def _list_executions_of_a_map_run() -> None:
    from moto.core.responses import ActionResult
    from moto.stepfunctions.exceptions import ResourceNotFound
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.list_executions

    def list_executions(self: Any) -> Any:
        map_run_arn = self._get_param("mapRunArn")
        if not map_run_arn:
            return original(self)
        children = children_of(self.stepfunction_backend, map_run_arn)
        if children is None:
            raise ResourceNotFound(map_run_arn)
        status = self._get_param("statusFilter")
        limit = int(self._get_param("maxResults") or 0)
        executions = []
        for child in children:
            if status and child["status"] != status:
                continue
            item = {k: child[k] for k in ("executionArn", "name", "stateMachineArn", "mapRunArn", "status",
                                           "startDate")}
            if "stopDate" in child:
                item["stopDate"] = child["stopDate"]
            executions.append(item)
        token = self._get_param("nextToken")
        start = int(token) if token and token.isdigit() else 0
        page: dict[str, Any] = {"executions": executions[start:start + limit] if limit else executions[start:]}
        if limit and start + limit < len(executions):
            page["nextToken"] = str(start + limit)
        return ActionResult(page)

    StepFunctionResponse.list_executions = list_executions
