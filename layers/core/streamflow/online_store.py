"""The online feature table (DynamoDB) that the API reads: one item per user_id.

An item is ``user_id``, ``month`` and ``features``: the model features as one compact JSON
object in a string attribute (``{"monthly_fee":70.35,"paperless_billing":true,...}``), not
one typed attribute per feature. Every attribute costs per-value work on both sides of a
read (the emulator sizes, converts and writes each one; the client walks each one): one
string instead of fourteen typed values made a 1,000-id ``/predict/batch`` read 22–28 % less
CPU (``bench/README.md``). Items written before, one attribute per feature, are still read
(``_from_wire`` takes either layout); PublishOnlineFeatures rewrites every user each month,
so the next published month replaces them.

Written with the low-level client: items are built directly in DynamoDB's wire format
(no per-attribute ``TypeSerializer`` round trip) and ``BatchWriteItem`` calls of 25 items
run on a few threads (one against an endpoint on this machine: ``write_threads``), because
the table is rewritten whole every month (measured in ``bench/``: the resource
``batch_writer`` spent most of BuildFeatures' time). Reads are a
single ``GetItem`` (``/predict``) or ``BatchGetItem`` calls of up to 100 keys, several at
once (``/predict/batch``). Their answers are DynamoDB's wire JSON already (``{"N": "1.5"}``,
what botocore's parser would return for them): ``_raw_json_reads`` keeps that JSON instead of
walking it attribute by attribute against the response shape (most of the client's time for
a 100-item answer), except for an answer that may hold binary attributes, which botocore
parses as before.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any, Iterable, Iterator
from urllib.parse import urlsplit

from .aws_clients import fixed_user_agent, per_endpoint
from .schema import BOOLEAN_FEATURES, ID_COLUMN, MODEL_FEATURES

if TYPE_CHECKING:  # pandas is imported where a frame is built: the API's reads need none
    import pandas as pd

BATCH_WRITE_ITEMS = 25  # DynamoDB's BatchWriteItem limit
BATCH_GET_KEYS = 100  # DynamoDB's BatchGetItem limit
WRITE_THREADS = 4  # BatchWriteItem calls in flight against DynamoDB
LOCAL_WRITE_THREADS = 1  # … against an endpoint on this machine: see write_threads
READ_THREADS = 10  # BatchGetItem calls in flight: a 1,000-id /predict/batch asks all ten at once
RAW_JSON_READS = ("GetItem", "BatchGetItem")
PACKED_ATTRIBUTE = "features"  # the model features, one JSON object in an S attribute
BINARY_TYPE_MARKERS = (b'"B"', b'"BS"')  # base64 text on the wire; botocore decodes it to bytes
_RETRIES = 8


@per_endpoint("AWS_ENDPOINT_URL_DYNAMODB")
def _client():
    import boto3
    from botocore.config import Config

    # The items are built here in wire format; botocore re-checking every attribute of
    # every 25-item batch against the shape is client CPU the monthly rewrite can skip. A
    # fixed User-Agent: botocore's default one is rebuilt twice per call (a /predict's read).
    client = boto3.client("dynamodb", config=Config(max_pool_connections=max(10, WRITE_THREADS * 2),
                                                    parameter_validation=False,
                                                    user_agent=fixed_user_agent("streamflow-online-store")))
    for operation in RAW_JSON_READS:
        client.meta.events.register(f"before-parse.dynamodb.{operation}", _raw_json_reads)
    return client


def _raw_json_reads(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore's ``before-parse`` hook: a successful read's body becomes the response as it
    is (its AttributeValues are the same dicts the parser would build), and the parser is
    left an empty document. Errors and answers with binary attributes are parsed normally."""
    body = response_dict.get("body")
    if response_dict.get("status_code") != 200 or not isinstance(body, bytes) or not body:
        return
    if any(marker in body for marker in BINARY_TYPE_MARKERS):
        return
    try:
        document = json.loads(body)
    except ValueError:
        return
    if isinstance(document, dict):
        customized_response_dict.update(document)
        response_dict["body"] = b"{}"


def open_client() -> None:
    """Create the client now (the API's init), not in its first request."""
    _client()


@functools.cache
def _read_pool() -> ThreadPoolExecutor:
    # kept by the execution environment: no thread start per request
    return ThreadPoolExecutor(max_workers=READ_THREADS, thread_name_prefix="batch-get")


def _packed_value(column: str, value: Any) -> Any:
    """A feature as the JSON of the packed attribute: the values the per-attribute layout
    read back (booleans as bool, text as str, every number as float)."""
    if column in BOOLEAN_FEATURES:
        return bool(value)
    if isinstance(value, str):
        return value
    return float(value)


def _wire_item(user_id: str, month: str, row: dict[str, Any]) -> dict[str, Any]:
    packed = {column: _packed_value(column, row[column]) for column in MODEL_FEATURES}
    return {ID_COLUMN: {"S": user_id}, "month": {"S": month},
            PACKED_ATTRIBUTE: {"S": json.dumps(packed, separators=(",", ":"))}}


def _from_packed(text: str) -> dict[str, Any]:
    values = json.loads(text)
    row: dict[str, Any] = {}
    for column in MODEL_FEATURES:
        value = values.get(column)
        row[column] = float(value) if type(value) is int else value  # a JSON integer read as a float
    return row


def _from_wire(item: dict[str, Any]) -> dict[str, Any]:
    """One item's model features as plain Python values (numbers as float), from either
    layout: the packed ``features`` string, or one attribute per feature (items written
    before the packed layout)."""
    packed = item.get(PACKED_ATTRIBUTE)
    if packed and "S" in packed:
        return _from_packed(packed["S"])
    row: dict[str, Any] = {}
    for column in MODEL_FEATURES:
        attribute = item.get(column)
        if not attribute:
            row[column] = None
        elif "N" in attribute:
            row[column] = float(attribute["N"])
        elif "BOOL" in attribute:
            row[column] = bool(attribute["BOOL"])
        elif "S" in attribute:
            row[column] = attribute["S"]
        else:  # NULL or an unexpected type: treated as missing, as normalise does
            row[column] = None
    return row


def write_threads(endpoint: str | None) -> int:
    """BatchWriteItem calls to keep in flight for a DynamoDB ``endpoint`` (the URL the client
    resolved; None or empty: AWS's own).

    Against DynamoDB, requests wait on the network, so several in flight write faster. An
    endpoint on this machine (the local stack's emulator, LocalStack) answers on the same
    cores as the functions: a second request in flight keeps the client and the emulator
    both busy and takes a core from the work running beside the write (drift → train →
    compare, beside PublishOnlineFeatures). Measured side by side (``bench/README.md`` §1f):
    the 10k loop's ratio to its floor 2.14 with one in flight against 2.25 with four; the
    price is at 100k, where the write is the longest branch and took ≈ 1.9 s longer."""
    if not endpoint:
        return WRITE_THREADS
    host = urlsplit(endpoint).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return LOCAL_WRITE_THREADS if loopback else WRITE_THREADS


def _write_batch(table_name: str, items: list[dict[str, Any]]) -> None:
    request = {table_name: [{"PutRequest": {"Item": item}} for item in items]}
    for attempt in range(_RETRIES):
        unprocessed = _client().batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        if not unprocessed:
            return
        request = unprocessed
        time.sleep(min(1.0, 0.05 * 2 ** attempt))
    raise RuntimeError(f"DynamoDB left {len(request.get(table_name, []))} items unprocessed in {table_name}")


def write_online_features(table_name: str, month: str, frame: pd.DataFrame, block_rows: int = 10_000) -> int:
    """Upsert every user's features for the month; returns the number of items written.

    Items are built a block of rows at a time, so memory stays flat however many users."""
    frame = frame[~frame.index.duplicated(keep="last")]  # one put per key in a batch
    features = frame[MODEL_FEATURES]
    written = 0
    with ThreadPoolExecutor(max_workers=write_threads(_client().meta.endpoint_url)) as pool:
        for start in range(0, len(features), block_rows):
            block = features.iloc[start:start + block_rows]
            items = [_wire_item(str(user_id), month, row)
                     for user_id, row in zip(block.index, block.to_dict("records"))]
            batches = [items[i:i + BATCH_WRITE_ITEMS] for i in range(0, len(items), BATCH_WRITE_ITEMS)]
            for _ in pool.map(lambda batch: _write_batch(table_name, batch), batches):
                pass
            written += len(items)
    return written


def read_online_row(table_name: str, user_id: str) -> dict[str, Any] | None:
    """One user's raw features (numbers as float), or None if unknown."""
    item = _client().get_item(TableName=table_name, Key={ID_COLUMN: {"S": user_id}}).get("Item")
    return None if item is None else _from_wire(item)


def _batch_get(table_name: str, user_ids: list[str]) -> dict[str, dict[str, Any]]:
    """One ``BatchGetItem`` of up to 100 keys, with its unprocessed keys asked again."""
    found: dict[str, dict[str, Any]] = {}
    request: dict[str, Any] = {table_name: {"Keys": [{ID_COLUMN: {"S": user_id}} for user_id in user_ids]}}
    for attempt in range(_RETRIES):
        answer = _client().batch_get_item(RequestItems=request)
        for item in answer.get("Responses", {}).get(table_name, []):
            found[item[ID_COLUMN]["S"]] = _from_wire(item)
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            return found
        time.sleep(min(1.0, 0.05 * 2 ** attempt))
    raise RuntimeError(f"DynamoDB left keys unprocessed in {table_name}")


def iter_online_rows(table_name: str, user_ids: Iterable[str]) -> Iterator[dict[str, dict[str, Any]]]:
    """Raw features of the known users among ``user_ids``, one ``BatchGetItem`` answer (up
    to 100 keys) at a time in the order the answers arrive: up to ``READ_THREADS`` calls at
    once (a call waits on the network), so a caller can work on one answer (score it) while
    DynamoDB is still serving the others."""
    wanted = list(dict.fromkeys(user_ids))
    chunks = [wanted[start:start + BATCH_GET_KEYS] for start in range(0, len(wanted), BATCH_GET_KEYS)]
    if len(chunks) <= 1:
        yield from (_batch_get(table_name, chunk) for chunk in chunks)
        return
    calls = [_read_pool().submit(_batch_get, table_name, chunk) for chunk in chunks]
    try:
        for call in as_completed(calls):
            yield call.result()
    finally:
        for call in calls:  # a caller that stopped early (or an error): drop what has not started
            call.cancel()


def read_online_rows(table_name: str, user_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Raw features of the known users among ``user_ids`` (``iter_online_rows`` merged), in
    request order."""
    wanted = list(dict.fromkeys(user_ids))
    found: dict[str, dict[str, Any]] = {}
    for part in iter_online_rows(table_name, wanted):
        found.update(part)
    return {user_id: found[user_id] for user_id in wanted if user_id in found}


def rows_to_frame(rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Raw rows → the typed frame the model is trained and served with."""
    import pandas as pd

    from .features import normalise_feature_types

    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(MODEL_FEATURES))
    frame.index.name = ID_COLUMN
    return normalise_feature_types(frame)


def read_online_features(table_name: str, user_id: str) -> pd.DataFrame | None:
    """One user's features as a one-row frame ready for the model, or None if unknown."""
    row = read_online_row(table_name, user_id)
    return None if row is None else rows_to_frame({user_id: row})
