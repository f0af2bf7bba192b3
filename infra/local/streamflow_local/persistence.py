"""Durable emulator state: moto's backends checkpointed to ``<state>/aws`` and restored on start.

moto keeps every service's state in Python objects (``BackendDict`` → account → region →
backend). A checkpoint pickles the backends of each service that changed since the last
one into ``<service>-<generation>.pickle`` and then replaces ``index.json`` (temp file +
``os.replace``), so a crash at any moment leaves the previous complete checkpoint. It runs
every ``CHECKPOINT_SECONDS`` (0.5 s) when something changed, and a service whose last
checkpoint took t seconds waits ``SPACING`` × t before the next: an acknowledged write is
lost by a ``kill -9`` only if it came less than max(0.5 s, 4 t) + t before it (t is a few
hundredths of a second for S3, Lambda and Step Functions; it grows with a DynamoDB table's
size, see README "Local state").

* What changed is known from the requests (``track_writes``): a request that is not a read
  (GET/HEAD, ``Get*``/``Describe*``/``List*``/``Query``/``Scan``…, Lambda ``Invoke``) marks
  its service (from the SigV4 credential scope) dirty; Step Functions also when an
  execution started or ended (its interpreter thread writes the history without a
  request; a running execution comes back interrupted anyway).
* A write request holds its service's lock shared; a checkpoint of that service holds it
  exclusive, so the pickle is a consistent cut of that service.
* DynamoDB writes are journaled (``Journal``) before the client hears back, so none that
  was acknowledged is lost; the table is pickled only when its journal has grown, and by a
  forked copy of the process (``_fork``) at the lowest CPU priority: the stack goes on
  answering, and checkpointing the other services, while it pickles; a later round commits
  the pickle to the index when the copy is done (``Store._reap``).
* S3 bodies are written once, as files in ``blobs/`` (an object's body never changes in
  moto: a PUT makes a new key), so a checkpoint re-pickles only keys' metadata; a restored
  key reads its body from its file. Blobs no committed checkpoint references are deleted.
* A Step Functions execution is pickled without its interpreter thread, with its history
  as data; one that was running comes back ``ABORTED`` with the error ``INTERRUPTED_ERROR``
  (``streamflow status`` shows it as interrupted; ``streamflow resume`` finishes it).

``STREAMFLOW_PERSIST=0`` turns all of this off (the stack is in-memory, as before);
``STREAMFLOW_PERSIST_DEBUG=1`` prints each write request the stack log sees.
"""

from __future__ import annotations

import collections
import copyreg
import dataclasses
import datetime
import functools
import io
import json
import logging
import os
import pickle
import shutil
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

LOG = logging.getLogger("streamflow.persistence")

PERSIST_ENV = "STREAMFLOW_PERSIST"
DEBUG = os.environ.get("STREAMFLOW_PERSIST_DEBUG") == "1"
CHECKPOINT_SECONDS = float(os.environ.get("STREAMFLOW_CHECKPOINT_SECONDS", "0.5"))
# A service whose checkpoint took t seconds is not checkpointed again for SPACING × t:
# while a big table is being written, checkpoints take at most 1/(SPACING+1) of a core.
SPACING = 4.0
FORMAT_VERSION = 1
INDEX = "index.json"
BLOBS = "blobs"
ALL = "*"
INTERRUPTED_ERROR = "StreamFlow.Interrupted"
INTERRUPTED_CAUSE = ("the local stack stopped (streamflow down, or a crash) while this execution was running; "
                     "finish it with `streamflow resume {month}`")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
READ_ACTION_PREFIXES = ("Get", "Describe", "List", "Query", "Scan", "BatchGet", "Head", "Validate", "Test")
SCOPE_TO_SERVICE = {"states": "stepfunctions"}
JOURNALED = frozenset({"dynamodb"})  # JSON-protocol services whose writes are journaled
COMPACT_BYTES = 8 * 1024 * 1024  # a journal is folded into a pickle past max(this, the pickle)
# POST: write a checkpoint now (``snapshot save``); GET: what checkpoints cost so far (bench)
CHECKPOINT_PATH = "/_streamflow/checkpoint"
FORK_ENV = "STREAMFLOW_CHECKPOINT_FORK"


def enabled() -> bool:
    return os.environ.get(PERSIST_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


# ---- which requests change what --------------------------------------------------------

def request_service(environ: dict[str, Any]) -> str:
    """The moto service a request is for, from its SigV4 credential scope (``ALL`` if unsigned)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = ""
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0]
    elif "X-Amz-Credential=" in environ.get("QUERY_STRING", ""):
        from urllib.parse import unquote

        scope = unquote(environ["QUERY_STRING"].split("X-Amz-Credential=", 1)[1].split("&", 1)[0])
    parts = scope.split("/")
    if len(parts) >= 4:
        return SCOPE_TO_SERVICE.get(parts[3], parts[3])
    return ALL


def is_write(environ: dict[str, Any]) -> bool:
    """Whether a request may change the emulator's state (reads and Lambda Invoke do not)."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    if method in READ_METHODS:
        return False
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        action = target.rsplit(".", 1)[-1]
        return not action.startswith(READ_ACTION_PREFIXES)
    path = environ.get("PATH_INFO", "")
    if path.startswith("/20") and path.endswith("/invocations"):  # Lambda Invoke
        return False
    return True


class SharedExclusive:
    """A lock many writers of one service hold shared, a checkpoint of it exclusive.

    Shared holders never wait for a waiting checkpoint (a write request can nest another,
    e.g. an S3 PUT whose notification runs a function that writes to S3), only for one
    that holds the lock.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False

    def acquire_shared(self) -> None:
        with self._cond:
            while self._exclusive:
                self._cond.wait()
            self._shared += 1

    def release_shared(self) -> None:
        with self._cond:
            self._shared -= 1
            if not self._shared:
                self._cond.notify_all()

    def acquire_exclusive(self, timeout: float) -> bool:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._exclusive and not self._shared, timeout):
                return False
            self._exclusive = True
            return True

    def release_exclusive(self) -> None:
        with self._cond:
            self._exclusive = False
            self._cond.notify_all()


# ---- DynamoDB: a journal of writes ---------------------------------------------------------

class Journal:
    """The write requests a service acknowledged since its last pickle, one JSON line each,
    appended before the client hears back (a ``kill -9`` loses none). Pickling a big table
    costs seconds (≈1M items: tens of seconds) and would have to happen again and again
    while a month's features are written; the journal makes a write cost one append, and
    the table is pickled only when its journal has grown as big as its last pickle
    (``compaction``). ``<service>-journal-<seq>.jsonl``: a pickle records the sequence
    number of the journal begun with it; restore replays that journal and every later one."""

    def __init__(self, folder: Path, service: str):
        self.folder = Path(folder)
        self.service = service
        self._lock = threading.Lock()
        self._file: Any = None
        self.seq = 0
        self.bytes = 0

    def path(self, seq: int) -> Path:
        return self.folder / f"{self.service}-journal-{seq:08d}.jsonl"

    def existing(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.folder.glob(f"{self.service}-journal-*.jsonl"):
            try:
                found.append((int(path.stem.rsplit("-", 1)[1]), path))
            except ValueError:
                continue
        return sorted(found)

    def start(self, seq: int) -> None:
        """New writes go to journal ``seq`` (the service's exclusive lock is held)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
            self.folder.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path(seq), "ab")
            self.seq, self.bytes = seq, 0

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self._file.write(line)
            self._file.flush()  # to the OS: survives the process
            self.bytes += len(line)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def records(self, from_seq: int) -> Iterable[dict[str, Any]]:
        for seq, path in self.existing():
            if seq < from_seq:
                continue
            with open(path, "rb") as handle:
                for line in handle:
                    try:
                        yield json.loads(line)
                    except ValueError:  # the last line of a crash, half written
                        break


def _replay(records: Iterable[dict[str, Any]]) -> int:
    """Apply journaled requests to moto's backends, through the stack's WSGI application
    (moto's own, with ``moto_fast_write`` in front: the same items, a third of the time)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import Client

    from . import moto_fast_write

    client = Client(moto_fast_write.wrap(DomainDispatcherApplication(create_backend_app)))
    count = 0
    for record in records:
        scope = f"testing/20260101/{record['r']}/{record['s']}/aws4_request"
        response = client.post(record.get("p") or "/", data=record["b"].encode(), headers={
            "X-Amz-Target": record["t"], "Content-Type": "application/x-amz-json-1.0",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0"})
        if response.status_code >= 300:
            LOG.warning("replaying %s gave HTTP %s", record["t"], response.status_code)
        count += 1
    return count


def _region(environ: dict[str, Any]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    parts = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/") if "Credential=" in auth else []
    return parts[2] if len(parts) >= 4 else "us-east-1"


# ---- S3 bodies as files -------------------------------------------------------------------

class BlobBuffer:
    """A restored S3 key's body: the file in ``blobs/``, opened per read (no descriptor held)."""

    def __init__(self, path: Path):
        self.path = path
        self._pos = 0

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 0:
            self._pos = pos
        elif whence == 1:
            self._pos += pos
        else:
            self._pos = self.path.stat().st_size + pos
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(self._pos)
            data = handle.read(size)
        self._pos += len(data)
        return data

    def close(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return False


_blob_dir: Path | None = None  # where keys being unpickled find their bodies


def _restore_key(cls: type, state: dict[str, Any], blob: str) -> Any:
    key = cls.__new__(cls)
    key.__dict__.update(state)
    assert _blob_dir is not None
    key._value_buffer = BlobBuffer(_blob_dir / blob)
    key.lock = threading.Lock()
    key._sf_blob = blob
    return key


def _restore_dict(cls: type, items: dict[Any, Any], state: dict[str, Any] | None) -> Any:
    """A dict subclass rebuilt with dict's own update: S3's versioned key store iterates
    only the newest version of each key, and DynamoDB's item dict re-measures the whole
    item on every key set; neither must run on restore."""
    obj = cls.__new__(cls)
    dict.update(obj, items)
    if state:
        obj.__dict__.update(state)
    return obj


def _reduce_dict(obj: Any) -> Any:
    return (_restore_dict, (type(obj), dict(dict.items(obj)), getattr(obj, "__dict__", None) or None))


def _restore_weak_values(items: dict[Any, Any]) -> Any:
    import weakref

    return weakref.WeakValueDictionary(items)


def _restore_defaultdict(factory: Any, items: dict[Any, Any]) -> Any:
    import collections

    return collections.defaultdict(factory, items)


def _reduce_defaultdict(d: Any) -> Any:
    """moto builds some with ``lambda: {}``: a lambda does not pickle, the type it makes does."""
    factory = d.default_factory
    if getattr(factory, "__name__", "") == "<lambda>":
        sample = factory()
        if type(sample) not in (dict, list, set, int, str) or sample:
            raise pickle.PicklingError(f"defaultdict with factory {factory!r}")
        factory = type(sample)
    return (_restore_defaultdict, (factory, dict(d)))


def _restore_item(cls: type, hash_key: Any, range_key: Any, attrs: dict[str, Any], state: dict[str, Any]) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

    item = cls.__new__(cls)
    item.__dict__.update(state)
    item.hash_key, item.range_key = hash_key, range_key
    values = LimitedSizeDict.__new__(LimitedSizeDict)
    for key, value in attrs.items():
        if type(value) is tuple:  # a scalar, flattened by _reduce_item
            typed = DynamoType.__new__(DynamoType)
            typed.type, typed.value = value
            value = typed
        dict.__setitem__(values, key, value)
    item.attrs = values
    return item


def _reduce_item(item: Any) -> Any:
    """A DynamoDB item with its scalar attributes as (type, value) tuples: pickling a tuple
    is C work, an object per attribute was most of a checkpoint's time at 100k items."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    attrs = {key: (value.type, value.value) if type(value) is DynamoType and value.type in SCALAR_TYPES
             and len(value.__dict__) == 2 else value for key, value in dict.items(item.attrs)}
    state = {k: v for k, v in item.__dict__.items() if k not in ("hash_key", "range_key", "attrs")}
    return (_restore_item, (type(item), item.hash_key, item.range_key, attrs, state))


SCALAR_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL"})


def _restore_lock() -> Any:
    return threading.Lock()


def _restore_rlock() -> Any:
    return threading.RLock()


def _write_blob(key: Any, blob_dir: Path) -> str:
    blob = uuid.uuid4().hex
    tmp = blob_dir / f".{blob}.tmp"
    with open(tmp, "wb") as out, key.lock:
        try:
            key._value_buffer.seek(0)
            shutil.copyfileobj(key._value_buffer, out, 8 * 1024 * 1024)
        except ValueError:  # a disposed key (closed buffer): moto itself treats it as empty
            pass
    os.replace(tmp, blob_dir / blob)
    return blob


# ---- Step Functions executions -----------------------------------------------------------

def _execution_month(execution: Any) -> str:
    data = getattr(execution, "input_data", None)
    if isinstance(data, dict) and data.get("month"):
        return str(data["month"])
    from streamflow.reruns import month_of_execution

    return month_of_execution(str(getattr(execution, "name", "")))


def _restore_execution(cls: type, state: dict[str, Any], history: list[dict[str, Any]]) -> Any:
    from moto.stepfunctions.parser.api import ExecutionStatus

    execution = cls.__new__(cls)
    execution.__dict__.update(state)
    execution.exec_worker = None
    execution._sf_history = history
    if execution.exec_status == ExecutionStatus.RUNNING:
        _mark_interrupted(execution)
    return execution


def _mark_interrupted(execution: Any) -> None:
    from moto.stepfunctions.parser.api import ExecutionStatus

    now = datetime.datetime.now(tz=datetime.timezone.utc)
    execution.exec_status = ExecutionStatus.ABORTED
    execution.stop_date = now
    execution.error = INTERRUPTED_ERROR
    execution.cause = INTERRUPTED_CAUSE.format(month=_execution_month(execution))
    history = execution._sf_history
    last_id = history[-1]["id"] if history else 0
    history.append({"timestamp": now, "type": "ExecutionAborted", "id": last_id + 1, "previousEventId": last_id,
                    "executionAbortedEventDetails": {"error": execution.error, "cause": execution.cause}})


def _execution_history(execution: Any) -> list[dict[str, Any]]:
    saved = getattr(execution, "_sf_history", None)
    worker = execution.__dict__.get("exec_worker")
    env = getattr(worker, "env", None)
    if env is None:
        return list(saved or [])
    return list(env.event_manager.get_event_history())


def _install_execution_patches() -> None:
    """A restored execution has no interpreter: its history is the saved one."""
    from moto.stepfunctions.parser.api import GetExecutionHistoryOutput
    from moto.stepfunctions.parser.backend.execution import Execution

    if getattr(Execution, "_sf_patched", False):
        return
    original = Execution.to_history_output

    def to_history_output(self: Any) -> Any:
        if self.exec_worker is None and hasattr(self, "_sf_history"):
            return GetExecutionHistoryOutput(events=list(self._sf_history))
        return original(self)

    Execution.to_history_output = to_history_output
    Execution._sf_patched = True
    _install_map_run_patches()


def _install_map_run_patches() -> None:
    """A restored execution has no interpreter, so none of its map runs (they live in it):
    ListMapRuns answers none for it and DescribeMapRun looks only in executions that have
    one. moto reads ``exec_worker.env`` of each: an AttributeError, an HTTP 500 that boto3
    retries with backoff for seconds before it gives up (``streamflow status`` after a
    restart waited that out for each restored execution it showed)."""
    from moto.stepfunctions.parser.api import ResourceNotFound
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from .distributed_map import map_run_records

    if getattr(StepFunctionsParserBackend, "_sf_map_runs_patched", False):
        return
    list_map_runs = StepFunctionsParserBackend.list_map_runs

    def list_map_runs_patched(self: Any, execution_arn: str) -> dict[str, Any]:
        if self.describe_execution(execution_arn=execution_arn).exec_worker is None:
            return {"mapRuns": []}
        return list_map_runs(self, execution_arn)

    def describe_map_run_patched(self: Any, map_run_arn: str) -> dict[str, Any]:
        for record in map_run_records(self):
            if record.map_run_arn == map_run_arn:
                return record.describe()
        raise ResourceNotFound(f"Map Run Does Not Exist: {map_run_arn}")

    StepFunctionsParserBackend.list_map_runs = list_map_runs_patched
    StepFunctionsParserBackend.describe_map_run = describe_map_run_patched
    StepFunctionsParserBackend._sf_map_runs_patched = True


# ---- pickling one service ----------------------------------------------------------------

class _Pickler(pickle.Pickler):
    """moto objects, with locks recreated, S3 bodies as blob files, executions as data."""

    def __init__(self, file: Any, blob_dir: Path):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict
        from moto.s3.models import FakeKey, MultipartDict
        from moto.s3.utils import _VersionedKeyStore
        from moto.stepfunctions.parser.backend.execution import Execution

        self.blobs: set[str] = set()
        table = copyreg.dispatch_table.copy()
        table[type(threading.Lock())] = lambda _lock: (_restore_lock, ())
        table[type(threading.RLock())] = lambda _lock: (_restore_rlock, ())
        # Lambda's ARN index: its values live in the backend's function table too.
        table[weakref.WeakValueDictionary] = lambda d: (_restore_weak_values, (dict(d.items()),))
        table[collections.defaultdict] = _reduce_defaultdict

        def reduce_key(key: Any) -> Any:
            blob = key.__dict__.get("_sf_blob")
            if blob is None or not (blob_dir / blob).exists():
                blob = key._sf_blob = _write_blob(key, blob_dir)
            self.blobs.add(blob)
            state = {k: v for k, v in key.__dict__.items() if k not in ("_value_buffer", "lock", "_sf_blob")}
            return (_restore_key, (type(key), state, blob))

        def reduce_execution(execution: Any) -> Any:
            state = {k: v for k, v in execution.__dict__.items() if k not in ("exec_worker", "_sf_history")}
            return (_restore_execution, (type(execution), state, _execution_history(execution)))

        table[FakeKey] = reduce_key
        table[Item] = _reduce_item
        for cls in (_VersionedKeyStore, LimitedSizeDict, MultipartDict):
            table[cls] = _reduce_dict
        for cls in (Execution, *Execution.__subclasses__()):
            table[cls] = reduce_execution
        self.dispatch_table = table


def _backend_dicts() -> dict[str, Any]:
    """Every moto BackendDict in use, by '<module>:<backend class>' (two dicts may share a
    service name: Step Functions has a plain and an interpreting backend)."""
    from moto.core.base_backend import BackendDict

    return {f"{bd.backend.__module__}:{bd.backend.__name__}": bd
            for bd in list(BackendDict._instances) if len(bd)}


def _find_backend_dict(key: str) -> Any:
    import importlib

    from moto.core.base_backend import BackendDict

    module_name, class_name = key.split(":")
    module = importlib.import_module(module_name)
    for value in vars(module).values():
        if isinstance(value, BackendDict) and value.backend.__name__ == class_name:
            return value
    raise LookupError(f"no moto backend {key}")


BACKEND_DICT_ATTRIBUTES = frozenset({"backend", "service_name", "_use_boto3_regions", "_additional_regions", "_id"})


def _contents(bd: Any) -> dict[str, Any]:
    """The region backends of every account, and what a BackendDict subclass keeps beside
    them (S3's bucket name → account map: without it a CreateBucket of an existing name
    would replace the bucket)."""
    return {"backends": {account: dict(dict.items(regions)) for account, regions in dict.items(bd)},
            "extras": {k: v for k, v in vars(bd).items() if k not in BACKEND_DICT_ATTRIBUTES}}


# ---- the store ---------------------------------------------------------------------------

def _journaled(app: Callable[..., Iterable[bytes]], environ: dict[str, Any], start_response: Callable[..., Any],
               journal: Journal, service: str) -> Iterable[bytes]:
    """Run a write request and journal it if moto accepted it (2xx)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    status: list[str] = []

    def capture(code: str, headers: Any, exc_info: Any = None) -> Any:
        status.append(code)
        return start_response(code, headers, exc_info) if exc_info else start_response(code, headers)

    result = app(environ, capture)
    if status and status[0].startswith("2"):
        journal.append({"s": service, "r": _region(environ), "t": environ.get("HTTP_X_AMZ_TARGET", ""),
                        "p": environ.get("PATH_INFO", "/"), "b": body.decode("utf-8")})
    return result


class Store:
    """Checkpoints of moto's state in ``folder`` (``<state>/aws``)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.blob_dir = self.folder / BLOBS
        self._dirty: set[str] = set()
        self._dirty_lock = threading.Lock()
        self._locks: dict[str, SharedExclusive] = {}
        self._checkpoint_lock = threading.Lock()
        self._running: set[str] = set()
        self.restore_seconds = 0.0
        self._not_before: dict[str, float] = {}
        self.journals: dict[str, Journal] = {}
        self.stats: list[dict[str, Any]] = []
        self._pending: dict[str, PendingPickle] = {}  # backend key → its forked pickle, still writing

    # -- change tracking --
    def lock_for(self, service: str) -> SharedExclusive:
        lock = self._locks.get(service)
        if lock is None:
            with self._dirty_lock:
                lock = self._locks.setdefault(service, SharedExclusive())
        return lock

    def mark_dirty(self, service: str) -> None:
        with self._dirty_lock:
            self._dirty.add(service)

    def track_writes(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        """WSGI wrapper: a write request holds its service's lock and marks it dirty."""
        store = self

        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == CHECKPOINT_PATH:
                post = environ.get("REQUEST_METHOD") == "POST"
                body = json.dumps(store.checkpoint(force=True) if post else store.summary()).encode()
                start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
            if not is_write(environ):
                return app(environ, start_response)
            service = request_service(environ)
            journal = store.journals.get(service)
            if DEBUG:
                print(f"write {service} {environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')} "
                      f"{environ.get('HTTP_X_AMZ_TARGET', '')}", flush=True)
            lock = store.lock_for(service)
            lock.acquire_shared()
            try:
                if journal is None:
                    return app(environ, start_response)
                return _journaled(app, environ, start_response, journal, service)
            finally:
                lock.release_shared()
                store.mark_dirty(service)

        return wrapped

    def start_journals(self) -> None:
        """Journal the JOURNALED services' writes from now on (after ``restore``)."""
        index = self.read_index()
        for service in JOURNALED:
            journal = Journal(self.folder, service)
            seqs = [seq for seq, _ in journal.existing()]
            journal.start(max(seqs + [int(index.get("generation", 0))]) + 1)
            self.journals[service] = journal

    # -- index --
    def read_index(self) -> dict[str, Any]:
        try:
            return json.loads((self.folder / INDEX).read_text())
        except FileNotFoundError:
            return {"format": FORMAT_VERSION, "generation": 0, "services": {}}

    # -- restore --
    def restore(self) -> dict[str, int]:
        """Load the last checkpoint into moto's backends (before the server starts)."""
        global _blob_dir
        _install_execution_patches()
        index = self.read_index()
        if index.get("format") != FORMAT_VERSION:
            raise RuntimeError(f"{self.folder / INDEX}: format {index.get('format')}, expected {FORMAT_VERSION}")
        restored: dict[str, int] = {}
        started = time.perf_counter()
        _blob_dir = self.blob_dir
        try:
            for key, entry in index.get("services", {}).items():
                with open(self.folder / entry["file"], "rb") as handle:
                    contents = pickle.load(handle)
                bd = _find_backend_dict(key)
                for account, regions in contents["backends"].items():
                    account_backends = bd[account]
                    for region, backend in regions.items():
                        dict.__setitem__(account_backends, region, backend)
                for name, value in contents["extras"].items():
                    setattr(bd, name, value)
                restored[key] = sum(len(r) for r in contents["backends"].values())
            for service in JOURNALED:
                entry = next((e for k, e in index.get("services", {}).items()
                              if e.get("service") == service), {})
                replayed = _replay(Journal(self.folder, service).records(int(entry.get("journal_seq", 0))))
                if replayed:
                    restored[f"{service} journal"] = replayed
        finally:
            _blob_dir = None
        self.restore_seconds = round(time.perf_counter() - started, 3)
        return restored

    # -- checkpoint --
    def running_executions(self) -> set[str]:
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        running = set()
        for _, _, backend in stepfunctions_parser_backends.iter_backends():
            for machine in list(backend.state_machines):
                for execution in list(getattr(machine, "executions", [])):
                    if getattr(execution, "exec_status", None) is not None and execution.status == "RUNNING":
                        running.add(execution.exec_arn)
        return running

    def checkpoint(self, force: bool = False, wait: bool = False) -> dict[str, Any] | None:
        """Write the services that changed (every service with ``force``); None if nothing did.

        A table pickled by a forked copy is committed by a later call, once the copy is done
        (``wait`` or ``force``: this call waits for it), so S3 and Step Functions go on being
        checkpointed while a big table is pickled."""
        with self._checkpoint_lock:
            return self._checkpoint(force, wait or force)

    def _checkpoint(self, force: bool, wait: bool) -> dict[str, Any] | None:
        running = self.running_executions()
        if running != self._running:  # one started or ended since the last look (a running
            self.mark_dirty("stepfunctions")  # one's progress is saved with the next write)
        self._running = running
        finished = self._reap(block=wait)
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        if not dirty and not force and not finished:
            return None
        started = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.blob_dir.mkdir(exist_ok=True)
        index = self.read_index()
        generation = int(index.get("generation", 0)) + 1
        services = dict(index.get("services", {}))
        written: dict[str, int] = {}
        for key, entry in finished.items():
            services[key] = entry
            written[key] = entry["bytes"]
        retry: set[str] = set()
        now = time.monotonic()
        for key, bd in _backend_dicts().items():
            if not (force or ALL in dirty or bd.service_name in dirty):
                continue
            if key in self._pending:
                continue  # a copy is pickling it; its writes since are journaled
            if not force and now < self._not_before.get(key, 0.0):
                retry.add(bd.service_name)  # its last checkpoint was long: space them out
                continue
            journal = self.journals.get(bd.service_name)
            if journal is not None and not force and journal.bytes < max(
                    COMPACT_BYTES, services.get(key, {}).get("bytes", 0)):
                continue  # its writes are in the journal already
            lock = self.lock_for(bd.service_name)
            if not lock.acquire_exclusive(timeout=5.0):
                retry.add(bd.service_name)  # a long write holds it; next round
                continue
            began = time.monotonic()
            entry: dict[str, Any] | None = None
            try:
                if journal is not None and forked_compaction():
                    # a copy of the process pickles the cut; writes go on in a new journal
                    name = _pickle_name(key, f"{generation}-{uuid.uuid4().hex[:8]}")  # no other's name
                    child = _fork(functools.partial(self._write_service, key, bd, generation, name))
                    self._pending[key] = PendingPickle(name, child, journal.seq + 1, began, bd.service_name)
                else:
                    entry = self._write_service(key, bd, generation)
                if journal is not None and (entry is not None or key in self._pending):
                    journal.start(journal.seq + 1)  # the pickle holds every write so far
                    if entry is not None:
                        entry["journal_seq"] = journal.seq
            except Exception:  # one service that cannot be written must not stop the others
                LOG.exception("checkpoint of %s failed", key)
                entry = None
            finally:
                lock.release_exclusive()
            if key in self._pending:
                continue
            self._not_before[key] = time.monotonic() + SPACING * (time.monotonic() - began)
            if entry is None:
                retry.add(bd.service_name)
                continue
            entry["service"] = bd.service_name
            services[key] = entry
            written[key] = entry["bytes"]
        if wait:  # the copies forked in this call (force: a consistent cut of everything)
            for key, entry in self._reap(block=True).items():
                services[key] = entry
                written[key] = entry["bytes"]
        if retry:
            with self._dirty_lock:
                self._dirty |= retry
        if not written:
            return None
        from moto import __version__ as moto_version

        new_index = {"format": FORMAT_VERSION, "generation": generation, "moto": moto_version,
                     "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     "services": services}
        tmp = self.folder / f".{INDEX}.tmp"
        tmp.write_text(json.dumps(new_index, indent=1) + "\n")
        os.replace(tmp, self.folder / INDEX)
        self._collect_garbage(new_index)
        stat = {"generation": generation, "seconds": round(time.perf_counter() - started, 4), "bytes": written}
        self.stats.append(stat)
        del self.stats[:-1000]
        return stat

    def _reap(self, block: bool) -> dict[str, dict[str, Any]]:
        """The index entries of the forked pickles that are done (all of them with ``block``).
        A failed copy gives no entry: its service is marked dirty and pickled again later,
        and meanwhile the last committed pickle and every journal since stay."""
        done: dict[str, dict[str, Any]] = {}
        for key, pending in list(self._pending.items()):
            pid, status = os.waitpid(pending.pid, 0 if block else os.WNOHANG)
            if pid == 0:
                continue  # still pickling
            del self._pending[key]
            took = time.monotonic() - pending.began
            self._not_before[key] = time.monotonic() + SPACING * took
            if took > 1.0:
                print(f"checkpoint: {key} pickled by a forked copy in {took:.1f} s", flush=True)
            entry = self._forked_entry(key, pending, os.waitstatus_to_exitcode(status))
            if entry is None:
                self.mark_dirty(pending.service)
            else:
                done[key] = entry
        return done

    def _forked_entry(self, key: str, pending: PendingPickle, exit_code: int) -> dict[str, Any] | None:
        """The index entry of a pickle a forked copy wrote (None if it failed: the journals
        since the last committed pickle stay, and restore replays them)."""
        if exit_code != 0:
            LOG.error("checkpoint of %s in a forked process failed (%s)", key, exit_code)
            return None
        return {"file": pending.name, "bytes": (self.folder / pending.name).stat().st_size, "blobs": [],
                "journal_seq": pending.journal_seq, "service": pending.service}

    def _write_service(self, key: str, bd: Any, generation: int, name: str | None = None) -> dict[str, Any] | None:
        name = name or _pickle_name(key, generation)
        tmp = self.folder / f".{name}.tmp"
        for _attempt in range(5):  # interpreter threads may change a dict while it is pickled
            buffer = io.BytesIO()
            pickler = _Pickler(buffer, self.blob_dir)
            try:
                pickler.dump(_contents(bd))
            except RuntimeError as exc:
                LOG.debug("checkpoint of %s retried: %s", key, exc)
                continue
            data = buffer.getbuffer()
            with open(tmp, "wb") as out:
                out.write(data)
            os.replace(tmp, self.folder / name)
            return {"file": name, "bytes": len(data), "blobs": sorted(pickler.blobs)}
        return None

    def _collect_garbage(self, index: dict[str, Any]) -> None:
        files = {entry["file"] for entry in index["services"].values()}
        files |= {pending.name for pending in self._pending.values()}  # renamed, not yet committed
        blobs = {blob for entry in index["services"].values() for blob in entry.get("blobs", [])}
        for path in self.folder.glob("*.pickle"):
            if path.name not in files:
                path.unlink(missing_ok=True)
        for path in self.blob_dir.iterdir():
            if path.name not in blobs and not path.name.startswith("."):
                path.unlink(missing_ok=True)
        for entry in index["services"].values():
            if "journal_seq" in entry:
                for seq, path in Journal(self.folder, entry["service"]).existing():
                    if seq < entry["journal_seq"]:
                        path.unlink(missing_ok=True)

    def summary(self) -> dict[str, Any]:
        seconds = [stat["seconds"] for stat in self.stats]
        return {"checkpoints": len(seconds), "seconds_total": round(sum(seconds), 3),
                "seconds_max": max(seconds, default=0.0), "restore_seconds": self.restore_seconds,
                "disk_bytes": self.disk_bytes(),
                "pickle_bytes": {k: v["bytes"] for k, v in self.read_index().get("services", {}).items()}}

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())


@dataclasses.dataclass(frozen=True)
class PendingPickle:
    """A table being pickled by a forked copy: committed to the index when the copy exits 0."""

    name: str  # the pickle's file name (the copy renames its temp file to it)
    pid: int
    journal_seq: int  # the first journal the pickle does not hold
    began: float  # time.monotonic() at the fork
    service: str


def _pickle_name(key: str, generation: int | str) -> str:
    return f"{key.replace(':', '.')}-{generation}.pickle"


def forked_compaction() -> bool:
    """Whether a journaled service's table is pickled by a forked copy of the process
    (``STREAMFLOW_CHECKPOINT_FORK``, on by default where ``os.fork`` exists)."""
    return hasattr(os, "fork") and os.environ.get(FORK_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _fork(write: Callable[[], dict[str, Any] | None]) -> int:
    """Run ``write`` in a forked copy of this process and return its pid (``Store._reap`` waits).

    Pickling a 1M-item table takes about a minute; in-process it held the table's lock (no
    DynamoDB write was answered) and the interpreter the whole time. The copy is the same
    consistent cut (the caller holds the service's lock exclusive while it forks) and
    pickles it on its own interpreter while this one goes on answering requests, niced: the
    journal already holds every write, so on a busy machine the pickle yields to them. The child
    closes every inherited descriptor first (sockets, pipes to workers, the journal: it
    must not keep a peer waiting for an end of file) and exits without running any
    cleanup of the parent's; it writes only its own temp file and renames it."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        import ctypes
        import gc
        import signal

        try:  # dies with the stack: an orphan must not rename a pickle after a restart
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
        except (OSError, AttributeError):
            pass
        if os.getppid() != parent:
            os._exit(1)
        gc.disable()  # a collection would touch (and so copy) every page of the parent's heap
        os.nice(19)  # the journal holds every write already: the pickle may wait for idle CPU
        os.closerange(3, 65536)
        entry = write()
        code = 0 if entry is not None and not entry["blobs"] else 1  # a journaled service has no S3 bodies
    except BaseException:  # noqa: BLE001 - the exit code says it failed; the parent logs it
        code = 1
    finally:
        os._exit(code)


class Checkpointer:
    """A thread that checkpoints every ``interval`` seconds when something changed."""

    def __init__(self, store: Store, interval: float = CHECKPOINT_SECONDS):
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                stat = self.store.checkpoint()
            except Exception:  # keep checkpointing: the next round may succeed
                LOG.exception("checkpoint failed")
                continue
            if stat and stat["seconds"] > 1.0:
                print(f"checkpoint {stat['generation']}: {stat['seconds']:.2f} s {stat['bytes']}", flush=True)

    def stop(self) -> None:
        """Stop the thread and write a last checkpoint."""
        self._stop.set()
        self._thread.join(timeout=60)
        self.store.checkpoint(wait=True)  # and commit a table a forked copy is still pickling
        for journal in self.store.journals.values():
            journal.close()


def state_folder(state_dir: Path) -> Path:
    return Path(state_dir) / "aws"
