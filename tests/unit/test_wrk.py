"""The /predict benchmark's wrk driver: the Lua script's JSON summary is read right, every
body of the file is POSTed as JSON with the given headers, error answers are counted, and
`make bench` insists on wrk (installing it through the Makefile's `wrk` target)."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench import wrk
from streamflow_local.config import PROJECT_ROOT

DONE = ('{"wrk_json":1,"requests":200,"duration_us":2000000,"bytes":5716,'
        '"errors":{"connect":0,"read":0,"write":0,"status":20,"timeout":0},'
        '"latency_us":{"min":500,"mean":1500.5,"stdev":10.0,"max":9000,"p50":1200,"p90":2000,"p99":4000,"p999":8000}}')


def test_the_done_hooks_json_becomes_milliseconds_and_successful_requests_per_second():
    raw = wrk.parse_done("Running 2s test @ http://127.0.0.1:1/predict\n  Latency ...\n" + DONE + "\n")
    summary = wrk.summarise(raw, "http://127.0.0.1:1/predict", 4)
    assert (summary["p50_ms"], summary["p90_ms"], summary["p99_ms"], summary["max_ms"]) == (1.2, 2.0, 4.0, 9.0)
    assert summary["requests"] == 200 and summary["errors"] == 20 and summary["error_kinds"] == {"status": 20}
    assert summary["rps"] == 90.0  # 180 answered 2xx in 2 s
    with pytest.raises(ValueError, match="no JSON summary"):
        wrk.parse_done("Running 1s test\nRequests/sec: 10\n")


def test_make_bench_insists_on_wrk_and_the_wrk_target_installs_it():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    bench = re.search(r"^bench: (.*)$\n\t(.*)$", makefile, re.M)
    assert bench and "wrk" in bench.group(1).split("##")[0].split()
    assert "--load-tool wrk" in bench.group(2)
    target = makefile[makefile.index("\nwrk:"):]
    assert "apt-get install -y -q wrk" in target and "exit 1" in target


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[bytes, str | None, str | None]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).seen.append((body, self.headers.get("Content-Type"), self.headers.get("x-api-key")))
        status = 500 if b"boom" in body else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.mark.skipif(wrk.find_wrk() is None, reason="wrk is not installed (make wrk)")
def test_wrk_posts_every_body_as_json_with_the_headers_and_counts_error_answers():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Recorder.seen = []
    bodies = [{"user_id": "a"}, {"user_id": "b"}, {"user_id": "boom"}]
    try:
        result = wrk.run(f"http://127.0.0.1:{server.server_address[1]}/predict", bodies, concurrency=2,
                         duration=1, headers={"x-api-key": "k"})
    finally:
        server.shutdown()
        server.server_close()
    sent = {json.loads(body)["user_id"] for body, _, _ in _Recorder.seen}
    assert sent == {"a", "b", "boom"}
    assert {(kind, key) for _, kind, key in _Recorder.seen} == {("application/json", "k")}
    assert result["tool"] == "wrk" and result["requests"] > 0 and result["p50_ms"] > 0
    assert result["error_kinds"].get("status", 0) > 0  # the 500s
    assert result["rps"] < result["requests"] / result["seconds"]  # only 2xx count as served
