"""Run inside a fresh process from the API function's folder (what a new Lambda worker
does): import the handler module (= init: imports + champion load), then answer one
/predict. Prints one JSON line of timings. Used by ``bench.coldstart``."""

from __future__ import annotations

import json
import sys
import time

started = time.perf_counter()
import app  # noqa: E402  (the function's module: its import is the Lambda init)

imported = time.perf_counter()
user_id = sys.argv[1] if len(sys.argv) > 1 else "unknown"
event = {
    "resource": "/{proxy+}", "path": "/predict", "httpMethod": "POST",
    "headers": {"content-type": "application/json"}, "multiValueHeaders": {"content-type": ["application/json"]},
    "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": {"proxy": "predict"},
    "stageVariables": None, "body": json.dumps({"user_id": user_id}), "isBase64Encoded": False,
    "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": "POST", "path": "/Prod/predict", "stage": "Prod",
                       "requestId": "bench", "identity": {"sourceIp": "127.0.0.1"}},
}
response = app.handler(event, None)
answered = time.perf_counter()
load = getattr(app.champion, "load_seconds", None)
print(json.dumps({
    "init_seconds": round(imported - started, 3),
    "model_load_seconds": None if load is None else round(load, 3),
    "first_request_seconds": round(answered - imported, 4),
    "total_seconds": round(answered - started, 3),
    "status": response.get("statusCode"),
    "scorer": getattr(app.champion.get(), "scorer", None) is not None,
}))
