"""moto's DynamoDB ``GetItem`` answered in front of its WSGI application (the local stack's
``/predict`` is one ``GetItem``).

moto's own ``get_item`` is ≈ 0.15 ms; the request around it costs the stack ≈ 1.5 ms more:
werkzeug builds a request, Flask dispatches it, moto's ``setup_class`` parses the body
against the botocore shape, the answer goes through moto's serializer, Flask's response and
CORS layer. Here a plain request (``TableName`` and ``Key`` only, plus ``ConsistentRead``,
which moto ignores) of a table without a range key, whose item (if any) holds only scalar
attributes (``S``/``N``/``BOOL``/``NULL``), is answered from moto's backend directly: the
same account and region moto would pick, the same item, and the same status, headers and
body bytes (only ``x-amzn-requestid`` is random in both; ``tests/unit/test_moto_fast_get.py``
compares them). Everything else (a projection, an unknown table, a malformed key, a binary
or list attribute, another operation) goes to moto unchanged, with the body it sent.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .moto_fast_reads import App, json_fast_path, plain_scalars

TARGET = "DynamoDB_20120810.GetItem"
PLAIN_REQUEST = frozenset({"TableName", "Key", "ConsistentRead"})
_dumps = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode



def wrap(app: App) -> App:
    """``app`` with plain ``GetItem`` requests answered here (see the module's docstring)."""
    from moto.core.responses import BaseResponse
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.iam.models import get_account_id_from, mark_account_as_visited

    def answer(environ: dict[str, Any], body: bytes) -> bytes | None:
        """The answer's body, or None when moto should answer."""
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if "AWS4" not in authorization or "/dynamodb/" not in authorization.split(",")[0]:
            return None
        if "HTTP_X_MOTO_ACCOUNT_ID" in environ or "MOTO_ACCOUNT_ID" in os.environ:
            return None  # moto's other ways to name the account: its own code
        host = environ.get("HTTP_HOST", "")
        if BaseResponse.region_regex.search(f"http://{host}{environ.get('PATH_INFO', '')}") \
                or BaseResponse.region_from_useragent_regex.search(environ.get("HTTP_USER_AGENT", "")):
            return None  # a region in the URL or the User-Agent: moto's own code picks it
        region = authorization.split(",")[0].split("/")[2]  # what moto reads without those
        if "AWSAccessKeyId" in environ.get("QUERY_STRING", ""):
            return None  # moto would take the access key from there
        match = BaseResponse.access_key_regex.search(authorization)
        request = json.loads(body)
        if type(request) is not dict or not request.keys() <= PLAIN_REQUEST or "Key" not in request:
            return None
        name, key = request.get("TableName"), request["Key"]
        if type(name) is not str or type(key) is not dict or len(key) != 1:
            return None
        if type(request.get("ConsistentRead", False)) is not bool:
            return None  # moto's parameter check says what is wrong with it
        access_key = match.group("access_key") if match else "AKIAEXAMPLE"  # moto's default, as it reads it
        account = get_account_id_from(access_key)
        table = dynamodb_backends[account][region].tables.get(name)
        if table is None or table.range_key_attr is not None or table.hash_key_attr not in key:
            return None
        wire_key = key[table.hash_key_attr]
        if type(wire_key) is not dict or len(wire_key) != 1 or wire_key.get(table.hash_key_type) in (None, ""):
            return None
        if type(wire_key[table.hash_key_type]) is not str:
            return None
        item = table.items.get(DynamoType(wire_key))
        plain = plain_scalars(list(item.attrs.items())) if item else {}
        if plain is None:
            return None
        mark_account_as_visited(account_id=account, access_key=access_key, service="dynamodb", region=region)
        return _dumps({"Item": plain} if item else {}).encode()

    return json_fast_path(app, TARGET, answer)
