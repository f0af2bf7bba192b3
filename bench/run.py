"""Run the benchmarks, print a table a person can read, write the same figures as JSON."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from streamflow_local.config import PROJECT_ROOT, StackConfig

ALL = ("floor", "loop", "predict", "coldstart", "package", "persist")


def timed_runs(n_users: int, asked: int | None) -> int:
    """How many times to time the loop and its floor at a size: ``asked``, else 3 up to
    100,000 users (medians: this machine is shared) and once above."""
    return asked if asked is not None else (3 if n_users <= 100_000 else 1)


def floor_environment() -> dict[str, str]:
    """The floor process's environment: its numeric libraries get the threads the loop's
    TrainChallenger gets (the vCPUs its memory buys, ``cpu_share``; training is the step that
    threads). With a thread per core, OpenMP's threads spin against anything else on this
    two-core machine: floors of 1.8–14.6 s against 1.8–2.4 s with one thread at load 2.5 (train
    0.36–9.2 s against 0.33 s), while on a quiet machine one thread costs ≈ 0.06 s."""
    from streamflow_local.cpu_share import thread_limits
    from streamflow_local.template import Stack, load_template

    stack = Stack(load_template(PROJECT_ROOT / "template.yaml"), name="floor", region="us-east-1")
    memory = int(stack.function_properties("TrainFunction").get("MemorySize", 128))
    return {**os.environ, **thread_limits(memory, {}, os.cpu_count() or 1)}


def floor_in_subprocess(n_users: int, repeats: int = 1) -> dict[str, Any]:
    """Each floor in its own process, so its peak memory is its own."""
    done = subprocess.run([sys.executable, "-m", "bench.floor", str(n_users), str(repeats)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, check=True, timeout=3600, env=floor_environment())
    return json.loads(done.stdout[done.stdout.index("{"):])


class FloorBeside:
    """A floor process (``bench.floor N --serve``, its data made once) asked for one timed run
    right before each timed month: the loop and its floor then share the machine's load of
    the moment, which on this shared machine moves more between minutes than within one."""

    def __init__(self, n_users: int) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "bench.floor", str(n_users), "--serve"],
                                        cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=floor_environment())
        self._expect("ready")

    def _expect(self, what: str) -> str:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # a library may print before the floor's own lines
            if line.startswith(what):
                return line
        raise RuntimeError(f"the floor process ended before printing {what!r} (exit {self.process.wait()})")

    def run_once(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        self._expect("{")

    def summary(self) -> dict[str, Any]:
        """The floor's figures over its runs (the process ends)."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        summary = json.loads(self._expect('{"users"'))
        self.process.wait(timeout=60)
        return summary

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def run(sizes: list[int], only: tuple[str, ...] = ALL, duration: float = 10.0, rounds: int = 3,
        concurrency: int = 4, repeats: int = 3, config: StackConfig | None = None,
        batch_size: int = 1000, persist_repeats: int = 1, load_tool: str | None = None,
        parameters: dict[str, str] | None = None, loop_repeats: int | None = None) -> dict[str, Any]:
    """``config``: an already running, deployed stack to use (else a private one is started,
    with the template's ``parameters`` overridden, e.g. ``UsersPerShard``).
    ``load_tool``: ``wrk`` or ``python`` for /predict (default: wrk if installed).
    ``loop_repeats``: timed months (and floors) per size, medians reported (``timed_runs``)."""
    from .coldstart import coldstart_benchmark
    from .loop import loop_latency
    from .package import package_sizes
    from .predict import predict_benchmark
    from .stack import bench_stack

    results: dict[str, Any] = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": list(os.getloadavg())},
        "sizes": sizes,
        "parameters": dict(parameters or {}),
    }
    took = results.setdefault("bench_seconds", {})
    clock = time.perf_counter()
    # Each timed month right after a floor run (one timed month, above 100k users by default:
    # its floor is timed just before the loop instead, so its data is not held beside the loop's).
    beside = "floor" in only and "loop" in only
    results["floor_beside"] = beside
    if "floor" in only and not beside:
        results["floor"] = [floor_in_subprocess(n, timed_runs(n, loop_repeats)) for n in sizes]
        took["floor"] = round(time.perf_counter() - clock, 1)
    if {"loop", "predict", "coldstart"} & set(only):
        from contextlib import nullcontext

        clock = time.perf_counter()
        with (nullcontext(config) if config is not None else bench_stack(parameters=parameters)) as stack:
            stack.apply_client_env()
            took["stack_up"] = round(time.perf_counter() - clock, 1)
            folder = None
            if "loop" in only or "predict" in only or "coldstart" in only:
                results["loop"] = []
                for index, n in enumerate(sizes if "loop" in only else sizes[:1]):
                    started = time.perf_counter()
                    # each further size on a stack of its own (when the stack is ours): a warm
                    # worker's Max Memory Used is its high-water mark, so a shared stack would
                    # carry one size's peaks into the next size's figures
                    with (nullcontext(stack) if index == 0 or config is not None
                          else bench_stack(parameters=parameters)) as target:
                        target.apply_client_env()
                        runs = timed_runs(n, loop_repeats)
                        if beside and runs == 1:  # a big month: its floor's process gone before the loop
                            results.setdefault("floor", []).append(floor_in_subprocess(n, 1))
                        floor = FloorBeside(n) if beside and runs > 1 else None
                        try:
                            outcome = loop_latency(target, n, repeats=runs,
                                                   before_each=floor.run_once if floor else None)
                            if floor:
                                results.setdefault("floor", []).append(floor.summary())
                        finally:
                            if floor:
                                floor.close()
                    stack.apply_client_env()
                    outcome["bench_seconds"] = round(time.perf_counter() - started, 1)
                    outcome["own_stack"] = index > 0 and config is None
                    results["loop"].append(outcome)
                    if index == 0:  # /predict and the cold start use the first size's month
                        folder = stack.state_dir / f"data-{n}" / "month_001"
                took["loop"] = round(sum(entry["bench_seconds"] for entry in results["loop"]), 1)
            if "predict" in only and folder is not None:
                clock = time.perf_counter()
                results["predict"] = predict_benchmark(stack, folder, duration=duration, rounds=rounds,
                                                       warmup=min(2.0, duration), concurrency=concurrency,
                                                       batch_size=batch_size, tool=load_tool)
                took["predict"] = round(time.perf_counter() - clock, 1)
            if "coldstart" in only and folder is not None:
                with open(folder / "users.csv") as handle:
                    handle.readline()
                    user_id = handle.readline().split(",", 1)[0]
                clock = time.perf_counter()
                results["coldstart"] = coldstart_benchmark(stack, user_id, repeats=repeats)
                took["coldstart"] = round(time.perf_counter() - clock, 1)
    if "persist" in only:
        from .persist import persistence_overhead

        clock = time.perf_counter()
        results["persist"] = persistence_overhead(sizes, repeats=persist_repeats)
        took["persist"] = round(time.perf_counter() - clock, 1)
    if "package" in only:
        clock = time.perf_counter()
        results["package"] = package_sizes()
        took["package"] = round(time.perf_counter() - clock, 1)
    results["machine"]["load_average_after"] = list(os.getloadavg())
    return results


# --- the table ---------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def largest_task_mb(loops: dict[int, dict[str, Any]]) -> dict[int, float]:
    """Per month size, the largest peak memory of any step of the timed month: the figure
    that must not grow with the month (sharded months: within 20 % from 100k to 1M users)."""
    largest: dict[int, float] = {}
    for users, entry in loops.items():
        peaks = [step["peak_mb"] for step in entry.get("median", {}).get("steps", []) if step.get("peak_mb")]
        if peaks:
            largest[users] = max(peaks)
    return largest


def table(results: dict[str, Any]) -> str:
    lines: list[str] = []
    add = lines.append
    machine = results.get("machine", {})
    add(f"StreamFlow benchmarks  {results.get('when', '')}  cpus={machine.get('cpus')} "
        f"load avg before/after={_fmt((machine.get('load_average') or [None])[0])}/"
        f"{_fmt((machine.get('load_average_after') or [None])[0])}")
    if results.get("parameters"):
        add("template parameters: " + " ".join(f"{k}={v}" for k, v in sorted(results["parameters"].items())))
    floors = {f["users"]: f for f in results.get("floor", [])}
    loops = {entry["users"]: entry for entry in results.get("loop", [])}
    if floors or loops:
        add("")
        add("1. Loop latency: upload → [SUMMARY], warm stack (month_001: drift → train → compare → promote)")
        add(f"   {'users':>9} {'loop s':>8} {'floor s':>8} {'loop/floor':>10}   floor steps (s)")
        for n in sorted(set(floors) | set(loops)):
            floor = floors.get(n, {})
            loop = loops.get(n, {}).get("median", {})
            ratio = loop.get("seconds") / floor["seconds"] if loop.get("seconds") and floor.get("seconds") else None
            steps = " ".join(f"{k}={v:.2f}" for k, v in floor.get("steps", {}).items())
            add(f"   {n:>9,} {_fmt(loop.get('seconds'), 1):>8} {_fmt(floor.get('seconds'), 2):>8} "
                f"{_fmt(ratio, 1):>10}   {steps}")
            loop_runs = [run["seconds"] for run in loops.get(n, {}).get("runs", [])]
            if len(loop_runs) > 1 or len(floor.get("runs", [])) > 1:  # the medians' spread
                add(f"   {'':>9} runs: loop {' '.join(_fmt(s, 2) for s in loop_runs) or '-'} s, "
                    f"floor {' '.join(_fmt(s, 2) for s in floor.get('runs', [])) or '-'} s")
            if results.get("floor_beside") and len(loop_runs) == len(floor.get("runs", [])) > 1:
                add(f"   {'':>9} each run / the floor timed right before it: "
                    + " ".join(_fmt(run / alone, 2) for run, alone in zip(loop_runs, floor["runs"])))
        if loops:
            add("")
            add("4. Scale: each step's wall time (s) / peak memory of its worker (MB)")
            states = []
            for entry in loops.values():
                for step in entry["median"]["steps"]:
                    if step["peak_mb"] is not None and step["state"] not in states:
                        states.append(step["state"])
            add(f"   {'step':<16}" + "".join(f"{n:>18,}" for n in sorted(loops)))
            for state in states:
                cells = []
                for n in sorted(loops):
                    step = next((s for s in loops[n]["median"]["steps"] if s["state"] == state), None)
                    cells.append(f"{_fmt(step['seconds'], 2)} s / {_fmt(step['peak_mb'])} MB" if step else "–")
                add(f"   {state:<16}" + "".join(f"{c:>18}" for c in cells))
            disk = " ".join(f"{n:,}: {e['stack_disk_mb']:,} MB (seeded CSVs {e['seeded_mb']:,} MB)"
                            for n, e in sorted(loops.items()) if e.get("stack_disk_mb") is not None)
            if disk:
                add(f"   disk of the stack's state after the run: {disk}")
            largest = largest_task_mb(loops)
            if largest:
                sizes = ", ".join(f"{n:,}: {mb:,.0f} MB" for n, mb in sorted(largest.items()))
                ratio = max(largest.values()) / min(largest.values())
                add(f"   largest task: {sizes}" + (f" (largest / smallest {ratio:.2f})" if len(largest) > 1 else ""))
            floor_mb = " ".join(f"{n:,}: {f.get('peak_rss_mb')} MB" for n, f in sorted(floors.items()))
            if floor_mb:
                add(f"   floor process peak RSS: {floor_mb}")
    predict = results.get("predict")
    if predict:
        r = predict["results"]
        c = predict["concurrency"]
        add("")
        add(f"2. /predict over HTTP on loopback, load from {predict.get('tool', 'python')} "
            f"({predict['rounds']} rounds × {predict['duration_s']} s, medians; model v{predict['model_version']}, "
            f"same prediction: {predict['same_prediction']})")
        add(f"   {'':<34} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9} {'rows/s':>9} {'handler p50':>12} "
            f"{'worst p99/p50':>14}")
        rows = [("API gateway → λ → DynamoDB, c=1", "api_c1"), ("mlflow models serve, c=1", "mlflow_c1"),
                (f"API gateway → λ → DynamoDB, c={c}", f"api_c{c}"), (f"mlflow models serve, c={c}", f"mlflow_c{c}"),
                (f"POST /predict/batch ({predict['batch_rows']} ids)", "api_batch"),
                (f"mlflow /invocations ({predict['batch_rows']} rows)", "mlflow_batch")]
        for label, key in rows:
            entry = r.get(key, {})
            add(f"   {label:<34} {_fmt(entry.get('p50_ms'), 1):>8} {_fmt(entry.get('p99_ms'), 1):>8} "
                f"{_fmt(entry.get('rps'), 1):>9} {_fmt(entry.get('rows_per_s'), 0):>9} "
                f"{_fmt(entry.get('handler_p50_ms'), 1):>12} {_fmt(entry.get('worst_p99_over_p50'), 1):>14}")
        add("   handler p50: the API function's own REPORT Duration (what Lambda bills); the rest of the "
            "API's latency is the emulator's gateway → executor → worker path")
        add(f"   throughput API / MLflow: c=1 {predict['throughput_ratio_c1']}×, "
            f"c={c} {predict.get(f'throughput_ratio_c{c}')}×, batch rows {predict.get('batch_rows_ratio', '–')}×")
    cold = results.get("coldstart")
    if cold:
        stack, fresh = cold["through_stack"], cold["fresh_process"]
        add("")
        add("3. Cold start of a new API worker")
        add(f"   through the stack (config change → first /predict): {_fmt(stack['first_request_s'], 2)} s "
            f"(warm request {_fmt(stack['warm_request_s'] * 1000, 1)} ms)")
        add(f"   fresh process: init {_fmt(fresh['init_seconds'])} s (of which model load "
            f"{_fmt(fresh['model_load_seconds'])} s), first answer {_fmt(fresh['first_request_seconds'], 3)} s, "
            f"total {_fmt(fresh['total_seconds'])} s; served by tree scorer: {fresh['served_by_scorer']}")
        add("   import self-time by package (s): "
            + ", ".join(f"{name} {sec:.2f}" for name, sec in fresh["imports_by_package_s"][:8]))
    package = results.get("package")
    if package:
        add("")
        if "error" in package:
            add(f"5. Package size: sam build failed: {package['error'][:300]}")
        else:
            image_limit = package.get("image_limit_mib", 10240)
            add(f"5. Package size: zip functions {package.get('build')}, unzipped code + layers vs "
                f"{package['limit_mib']} MiB; image functions vs {image_limit} MiB")
            if package.get("sam_error"):
                add(f"   sam build: {package['sam_error'][:200]}")
            add("   layers: " + ", ".join(f"{k} {v} MiB" for k, v in package["layers_mib"].items()))
            add(f"   {'function':<20} {'kind':<6} {'MiB':>8} {'limit':>7}")
            for name, info in package["functions"].items():
                kind = info.get("package", "zip")
                if "total_mib" not in info:
                    add(f"   {name:<20} {kind:<6} {'–':>8}")
                    continue
                limit = info.get("limit_mib", package["limit_mib"])
                largest = ", ".join(f"{n} {s}" for n, s in info.get("largest", [])[:4])
                add(f"   {name:<20} {kind:<6} {info['total_mib']:>8} {limit:>7}  {'fits' if info['fits'] else 'TOO BIG'}"
                    + (f"   (largest: {largest})" if largest else ""))
            if package.get("deps_layer_top"):
                add("   largest in the deps layer (MiB): "
                    + ", ".join(f"{n} {s}" for n, s in package["deps_layer_top"]))
            if package.get("image_note"):
                add(f"   {package['image_note']}")
    if results.get("persist"):
        from .persist import table_lines

        lines.extend(table_lines(results["persist"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--users", default="10000,100000", help="comma-separated month sizes (default 10k,100k)")
    parser.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of API vs MLflow")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--load-tool", choices=("wrk", "python"), default=None,
                        help="load generator for /predict (default: wrk if installed, else Python)")
    parser.add_argument("--persist-repeats", type=int, default=1,
                        help="persistence on/off pairs per size (alternating; medians)")
    parser.add_argument("--loop-repeats", type=int, default=None,
                        help="timed months and floors per size, medians reported (default 3 up to "
                             "100,000 users, else 1)")
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default bench/results/<time>.json)")
    parser.add_argument("--table", type=Path, default=None, help="print the table of an existing JSON file")
    parser.add_argument("--parameter", action="append", default=[], metavar="NAME=VALUE",
                        help="a template parameter of the private stacks (repeatable), e.g. UsersPerShard=1000000 "
                             "to run a big month one shot")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return 0
    sizes = [int(s) for s in args.users.split(",") if s.strip()]
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    # `kill` (SIGTERM) unwinds like Ctrl-C: the private stacks' context managers stop them
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    parameters = dict(item.split("=", 1) for item in args.parameter if "=" in item)
    if len(parameters) != len(args.parameter):
        parser.error("--parameter takes NAME=VALUE")
    results = run(sizes, only, duration=args.duration, rounds=args.rounds, concurrency=args.concurrency,
                  persist_repeats=args.persist_repeats, load_tool=args.load_tool, parameters=parameters,
                  loop_repeats=args.loop_repeats)
    out = args.out or PROJECT_ROOT / "bench" / "results" / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nJSON: {out}")
    return 0
