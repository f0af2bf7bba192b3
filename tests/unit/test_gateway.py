"""The local API Gateway's proxy event is one Mangum (the API's adapter) understands."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi import FastAPI, Request
from mangum import Mangum

from streamflow_local.gateway import proxy_event


@pytest.fixture(scope="module")
def handler():
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request):
        body = await request.body()
        return {
            "body_hex": body.hex(),
            "query": {k: request.query_params.getlist(k) for k in request.query_params.keys()},
            "content_type": request.headers.get("content-type"),
            "x_custom": request.headers.get("x-custom"),
            "path": request.url.path,
            "method": request.method,
        }

    @app.get("/health")
    async def health():
        return {"ok": True}

    return Mangum(app, lifespan="off")


def _call(handler, *args, **kwargs):
    response = handler(proxy_event(*args, **kwargs), None)
    return response["statusCode"], json.loads(response["body"])


def test_post_reaches_the_route_with_its_body_and_headers(handler):
    payload = json.dumps({"user_id": "7590-VHVEG"}).encode()
    status, body = _call(handler, "POST", "/echo", {"Content-Type": "application/json", "X-Custom": "42"}, payload)
    assert status == 200
    assert bytes.fromhex(body["body_hex"]) == payload
    assert body["content_type"] == "application/json"
    assert body["x_custom"] == "42"
    assert body["path"] == "/echo"
    assert body["method"] == "POST"


def test_query_string_reaches_the_app(handler):
    status, body = _call(handler, "POST", "/echo?user=7590-VHVEG&tag=a&tag=b&empty=", {}, b"")
    assert status == 200
    assert body["path"] == "/echo"
    assert body["query"] == {"user": ["7590-VHVEG"], "tag": ["a", "b"], "empty": [""]}


def test_binary_body_is_base64_and_arrives_intact(handler):
    payload = bytes(range(256))
    event = proxy_event("POST", "/echo", {}, payload)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload
    status, body = _call(handler, "POST", "/echo", {}, payload)
    assert status == 200
    assert bytes.fromhex(body["body_hex"]) == payload


def test_unknown_route_and_wrong_method_are_answered_by_the_app(handler):
    assert _call(handler, "GET", "/nope", {}, b"")[0] == 404
    assert _call(handler, "GET", "/echo", {}, b"")[0] == 405
    assert _call(handler, "GET", "/health", {}, b"") == (200, {"ok": True})


def test_event_shape_is_a_rest_v1_proxy_event():
    event = proxy_event("PUT", "/a/b?x=1&x=2&y=", {"Host": "localhost"}, b"hi", stage="Prod")
    assert event["httpMethod"] == "PUT"
    assert event["path"] == "/a/b"
    assert event["resource"] == "/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b"}
    assert event["queryStringParameters"] == {"x": "2", "y": ""}
    assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"], "y": [""]}
    assert event["headers"] == {"Host": "localhost"}
    assert event["multiValueHeaders"] == {"Host": ["localhost"]}
    assert event["body"] == "hi" and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "Prod" and context["path"] == "/Prod/a/b" and context["httpMethod"] == "PUT"
    assert "version" not in event or event["version"] == "1.0"


def test_event_without_query_or_body():
    event = proxy_event("GET", "/", {}, b"")
    assert event["path"] == "/"
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    assert event["body"] is None


def test_each_event_has_its_own_request_id():
    ids = {proxy_event("GET", "/", {}, b"")["requestContext"]["requestId"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(("path", "expected"), [
    ("/Prod/predict", "/predict"), ("/Prod/predict?x=1", "/predict?x=1"), ("/Prod", "/"), ("/Prod?x=1", "/?x=1"),
    ("/predict", "/predict"), ("/Production/predict", "/Production/predict"), ("/prod/predict", "/prod/predict"),
])
def test_a_path_under_the_stage_reaches_the_same_route(path, expected):
    """The deploy's ApiUrl ends in the stage (``…/Prod/``), as on AWS; only that stage's name,
    as a whole segment and with its case, is taken off."""
    from streamflow_local.gateway import without_stage

    assert without_stage(path, "Prod") == expected


def test_the_api_address_in_outputs_is_the_local_gateways():
    from streamflow_local.deploy import local_api_address

    api = {"rest_api": "local-ChurnApi", "url": "http://127.0.0.1:3000"}
    aws_url = "https://local-ChurnApi.execute-api.us-east-1.amazonaws.com/Prod/"
    assert local_api_address(aws_url, api, "us-east-1") == "http://127.0.0.1:3000/Prod/"
    assert local_api_address("streamflow-data-123", api, "us-east-1") == "streamflow-data-123"
    assert local_api_address(aws_url, {}, "us-east-1") == aws_url  # a template without an Api


def test_a_chunked_body_is_read_whole():
    """``Transfer-Encoding: chunked`` (curl -H 'Transfer-Encoding: chunked', a streamed
    requests body) reached the function as no body at all: a 422 for a good request."""
    import io

    from streamflow_local.gateway import read_body

    wire = b'7;ext=1\r\n{"user_\r\n12\r\nid": "0001-ABCDE"}\r\n0\r\nX-Trailer: t\r\n\r\nNEXT'
    stream = io.BytesIO(wire)
    assert read_body(stream, {"Transfer-Encoding": "chunked"}) == b'{"user_id": "0001-ABCDE"}'
    assert stream.read() == b"NEXT"  # the next request on the connection is left where it starts
    assert read_body(io.BytesIO(b"abcdef"), {"Content-Length": "3"}) == b"abc"
    assert read_body(io.BytesIO(b""), {}) == b""


@pytest.mark.parametrize(("wire", "headers"), [
    (b"", {"Content-Length": "11"}),
    (b"6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n", {"Transfer-Encoding": "chunked"}),
], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_refused(wire, headers):
    import io

    from streamflow_local.gateway import PayloadTooLarge, read_body

    with pytest.raises(PayloadTooLarge, match="10-byte limit"):
        read_body(io.BytesIO(wire), headers, limit=10)
