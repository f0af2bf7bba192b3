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
* an item whose attributes are all scalars (``S``/``N``/``BOOL``/``NULL``) becomes its wire
  dict directly; any other item goes through moto's converter as before;
* validation (100 keys per table and in all, duplicate keys) and its messages are moto's.

And for every response, the ``<RequestId>`` rewrite runs only when the body contains
``<RequestId>``: without it the expression cannot match, so the body is unchanged either way.

Answers are the same documents moto builds (``tests/unit/test_moto_fast_reads.py`` compares
them with moto's own handler on the same data).
"""

from __future__ import annotations

from typing import Any

SCALAR_TYPES = frozenset({"S", "N", "BOOL", "NULL"})
MAX_KEYS = 100
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # what moto (and DynamoDB) return at most per call
PROJECTION_PARAMETERS = ("ProjectionExpression", "AttributesToGet", "ExpressionAttributeNames")


def install() -> None:
    from moto.core.responses import BaseResponse
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.batch_get_item, "_streamflow_fast", False):
        return  # installed already (the stack and the tests call install more than once)
    DynamoHandler.batch_get_item = _fast_batch_get_item(DynamoHandler.batch_get_item)
    BaseResponse._enrich_response = staticmethod(_request_id_only_in_xml(BaseResponse._enrich_response))


def _fast_batch_get_item(original: Any) -> Any:
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.responses import DynamoResult

    class PlainResult(DynamoResult):
        """A ``DynamoResult`` whose items are plain wire dicts already (no conversion walk)."""

        def __init__(self, result: object) -> None:
            self._result = result

    def wire(item: Any) -> dict[str, Any]:
        attrs = item.attrs
        plain = {}
        for name, value in attrs.items():
            if type(value) is not DynamoType or value.type not in SCALAR_TYPES:
                return DynamoResult(item.describe_attrs(None)["Item"]).result  # moto's own conversion
            plain[name] = {value.type: value.value}
        return plain

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
