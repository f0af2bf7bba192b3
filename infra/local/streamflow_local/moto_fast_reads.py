"""moto's DynamoDB ``BatchGetItem`` without its per-key overheads (the local stack's
``/predict/batch`` is ten of them, and the stack's one interpreter serves all ten).

moto 5.2.5's handler, for each of up to 100 keys, looks the backend up under a global lock,
finds the table by name, measures the item twice for the 16 MB answer limit, and hands every
attribute to a generic converter; then the whole JSON answer (≈ 50 KB for 100 online-table
items) is scanned by a look-behind regular expression that rewrites ``<RequestId>`` in XML
bodies. Here, for a request without a projection (``ProjectionExpression``,
``AttributesToGet``, ``ExpressionAttributeNames``: those take moto's own code):

* the backend and each table are looked up once per request, and an item of a table
  without a range key with one dictionary lookup (moto hashes the key twice) (lazily: an unknown table fails
  with moto's error at the same point as before, and a table asked for no keys is not
  looked up, as in moto);
* each item found is measured once (``Item.size``, patched in ``moto_patches``), with the
  same 16 MB rule deciding what goes to ``UnprocessedKeys``;
* an item whose attributes are all scalars (``S``/``N``/``BOOL``/``NULL``) is written as its
  wire JSON directly, made once per item and kept while the item holds the same attribute
  objects (a put or update replaces them); any other item goes through moto's converter;
* validation (100 keys per table and in all, duplicate keys) and its messages are moto's.

And for every response, the ``<RequestId>`` rewrite runs only when the body contains
``<RequestId>``: without it the expression cannot match, so the body is unchanged either way.

Answers are the same documents moto builds (``tests/unit/test_moto_fast_reads.py`` compares
them with moto's own handler on the same data).
"""

from __future__ import annotations

import functools
import io
import json
import operator
import zlib
from typing import Any, Callable, Iterable

SCALAR_TYPES = frozenset({"S", "N", "BOOL", "NULL"})
MAX_KEYS = 100
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # what moto (and DynamoDB) return at most per call
# Wire JSON kept per item; past either bound the cache starts again. Entries of items that
# were replaced or deleted are only dropped then, so the bytes bound what they can hold.
MAX_CACHED_ITEMS = 500_000
MAX_CACHED_BYTES = 128 * 1024 * 1024
_dumps = functools.partial(json.dumps, separators=(",", ":"), check_circular=False)
PROJECTION_PARAMETERS = ("ProjectionExpression", "AttributesToGet", "ExpressionAttributeNames")


def plain_scalars(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any] | None:
    """An item's (name, ``DynamoType``) pairs as its wire dict when every attribute is a
    scalar (``SCALAR_TYPES``), else None: the other types are left to moto's conversion."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    plain = {}
    for name, value in pairs:
        if type(value) is not DynamoType or value.type not in SCALAR_TYPES:
            return None
        plain[name] = {value.type: value.value}
    return plain


App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def json_fast_path(app: App, target: str, answer: Callable[[dict[str, Any], bytes], bytes | None]) -> App:
    """``app`` with requests for ``target`` (an ``X-Amz-Target``) answered by ``answer``
    (environ, body) → the answer's body, or None to hand the request, body and all, to
    ``app``; with moto's status and headers for a JSON-protocol answer. Shared by the
    emulator's ``GetItem`` and ``BatchWriteItem`` fast paths."""
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    def fast(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET") != target or environ.get("REQUEST_METHOD") != "POST":
            return app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            text = answer(environ, body)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            text = None  # whatever moto makes of it (its error, in its words)
        if text is None:
            environ["wsgi.input"] = io.BytesIO(body)
            return app(environ, start_response)
        start_response("200 OK", [
            ("Content-Type", "application/x-amz-json-1.0"), ("server", "amazon.com"),
            ("x-amzn-requestid", gen_amzn_requestid_long()), ("x-amz-crc32", str(zlib.crc32(text))),
            ("Content-Length", str(len(text))), ("Access-Control-Allow-Origin", "*")])
        return [text]

    return fast


def install() -> None:
    from moto.core.responses import BaseResponse
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.batch_get_item, "_streamflow_fast", False):
        return  # installed already (the stack and the tests call install more than once)
    DynamoHandler.batch_get_item = _fast_batch_get_item(DynamoHandler.batch_get_item)
    BaseResponse._enrich_response = staticmethod(_request_id_only_in_xml(BaseResponse._enrich_response))


def _fast_batch_get_item(original: Any) -> Any:
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.responses import DynamoResult

    class Fragment:
        """One scalar item's wire JSON, made once and kept while the item's attributes are
        the same objects (see ``_wire_texts``)."""

        __slots__ = ("text",)

        def __init__(self, text: str) -> None:
            self.text = text

    class PlainResult(DynamoResult):
        """A ``DynamoResult`` whose items are wire JSON already: the answer is joined from
        them in the key order ``json.dumps`` of the whole result gives (the same bytes)."""

        def __init__(self, result: dict[str, Any]) -> None:
            self._result = result

        @property
        def result(self) -> object:  # what moto's serializer would read: plain dicts
            return _plain(self._result)

        def execute_result(self, context: Any) -> Any:
            result = self._result
            if not all(type(item) is Fragment for items in result["Responses"].values() for item in items):
                return DynamoResult.execute_result(self, context)  # e.g. binary attributes: moto's way
            tables = ",".join(_dumps(table) + ":[" + ",".join(item.text for item in items) + "]"
                              for table, items in result["Responses"].items())
            body = ('{"ConsumedCapacity":' + _dumps(result["ConsumedCapacity"]) + ',"Responses":{' + tables
                    + '},"UnprocessedKeys":' + _dumps(result["UnprocessedKeys"]) + "}")
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    def _plain(result: dict[str, Any]) -> dict[str, Any]:
        responses = {table: [json.loads(item.text) if type(item) is Fragment else item for item in items]
                     for table, items in result["Responses"].items()}
        return {**result, "Responses": responses}

    texts: dict[int, tuple[tuple[str, ...], tuple[Any, ...], Fragment]] = {}
    cached_bytes = [0]

    def wire(item: Any) -> Any:
        """The item's wire JSON (a ``Fragment``) if every attribute is a scalar, else moto's dict.

        moto never changes a scalar ``DynamoType`` in place (updates put new ones in the item),
        so a fragment stays right while the item holds the very same attribute objects; the
        cache keeps those objects alive, so their identities cannot be reused by others."""
        # one snapshot of the attributes: the key, the check and the text all come from it, so
        # a write racing this read (another server thread) cannot cache text under other objects
        pairs = tuple(item.attrs.items())
        names, values = tuple(name for name, _ in pairs), tuple(value for _, value in pairs)
        known = texts.get(id(item))
        if known is not None and known[0] == names and len(known[1]) == len(values) \
                and all(map(operator.is_, known[1], values)):
            return known[2]
        plain = plain_scalars(pairs)
        if plain is None:
            return DynamoResult(item.describe_attrs(None)["Item"]).result  # moto's own conversion
        fragment = Fragment(_dumps(plain))
        if len(texts) >= MAX_CACHED_ITEMS or cached_bytes[0] >= MAX_CACHED_BYTES:
            texts.clear()
            cached_bytes[0] = 0
        texts[id(item)] = (names, values, fragment)
        cached_bytes[0] += len(fragment.text)
        return fragment

    def batch_get_item(self: Any) -> Any:
        table_batches = self.body["RequestItems"]
        if any(request.get(parameter) is not None for request in table_batches.values()
               for parameter in PROJECTION_PARAMETERS):
            return original(self)
        for table_name, request in table_batches.items():
            if len(request["Keys"]) > MAX_KEYS:
                raise MockValidationException(
                    "1 validation error detected: Value at 'requestItems." + table_name
                    + ".member.keys' failed to satisfy constraint: Member must have length less than or equal to 100")
        if sum(len(request["Keys"]) for request in table_batches.values()) > MAX_KEYS:
            raise MockValidationException("Too many items requested for the BatchGetItem call")

        results: dict[str, Any] = {"ConsumedCapacity": [], "Responses": {}, "UnprocessedKeys": {}}
        backend = None
        answer_size = 0
        for table_name, request in table_batches.items():
            keys = request["Keys"]
            if self._contains_duplicates(keys):
                raise MockValidationException("Provided list of item keys contains duplicates")
            found: list[dict[str, Any]] = []
            results["Responses"][table_name] = found
            table = None
            for key in keys:
                if table is None:
                    backend = backend or self.dynamodb_backend
                    table = backend.get_table(table_name)
                hash_key, range_key = backend.get_keys_value(table, key)
                if table.range_key_attr is None:  # Table.get_item's path, one dict lookup not two
                    item = table.items.get(hash_key)
                else:
                    item = table.get_item(hash_key, range_key, None)
                if not item:
                    continue
                size = item.size()
                if answer_size + size > MAX_ANSWER_BYTES:
                    results["UnprocessedKeys"].setdefault(table_name, {"Keys": []})["Keys"].append(key)
                else:
                    found.append(wire(item))
                    answer_size += size
            results["ConsumedCapacity"].append({"CapacityUnits": len(keys), "TableName": table_name})
        return PlainResult(results)

    batch_get_item._streamflow_fast = True  # type: ignore[attr-defined]
    batch_get_item._streamflow_original = original  # type: ignore[attr-defined]  # the tests compare them
    return batch_get_item


def _request_id_only_in_xml(original: Any) -> Any:
    def enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
        if isinstance(body, str) and "<RequestId>" not in body:
            return original(headers, "")[0], body  # headers as moto sets them; the body cannot change
        return original(headers, body)

    return enrich_response
