"""`make mutate`: how strong the unit tests are, measured with mutmut over the pure core.

mutmut makes small changes (mutants) to the modules below, one at a time, and runs the
unit tests that reach the changed function; a mutant the tests do not notice "survived".
The score of a module is killed / (mutants - survivors judged equivalent), the equivalent
ones being listed with a reason in tests/mutation/equivalent.md.

mutmut expects the code under ``./``, ``src/`` or ``source/`` and names mutants after the
file path, while this repository maps ``streamflow`` to ``layers/core/streamflow``
(pyproject.toml). So the run happens in a staging folder, ``build/mutation``: the core as
``src/streamflow``, the unit tests as ``tests/unit`` and a pyproject.toml holding only
mutmut's and pytest's settings. Nothing in the work tree is changed.

Usage: python tests/mutation/mutate.py [--module NAME ...] [--max-children N] [--min-score 90]
       [--report-only | --retest | --resume]
``--module`` mutates only the named modules (staged alone, their oracle alone): a quicker
run while working on one module's tests; the report then shows those modules only.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "layers" / "core" / "streamflow"
UNIT = ROOT / "tests" / "unit"
STAGE = ROOT / "build" / "mutation"
EQUIVALENT = Path(__file__).with_name("equivalent.md")
SELECTED = STAGE / "modules.txt"  # the modules the staged run mutates (for --retest, --report-only)

# module → the unit test files that are its oracle (fast ones only: no stack, no tools).
MODULES: dict[str, list[str]] = {
    "promotion": ["test_promotion.py", "test_promotion_messages.py", "test_ordering.py"],
    "split": ["test_split.py", "test_split_known_answer.py"],
    "contract": ["test_contract.py", "test_contract_guards.py", "test_contract_texts.py", "test_partitioned_months.py"],
    "violations": ["test_violations.py", "test_contract.py", "test_ingest.py"],
    "ingest": ["test_ingest.py", "test_manifest_error.py", "test_manifest_rules.py", "test_manifest.py"],
    "manifest": ["test_manifest_rules.py", "test_manifest_error.py", "test_manifest.py"],
    "checksums": ["test_manifest.py"],
    "lease": ["test_lease.py"],
    "scorer": ["test_scorer.py"],
    "scorer_export": ["test_scorer.py"],
    "features": ["test_features.py"],
}
# Functions of those modules that are not pure decisions: I/O driven by the integration
# tests (a real stack), left out of the mutation run.
NOT_MUTATED: dict[str, dict[str, str]] = {
    "ingest": {
        "_month_processed": "reads S3 (test_manifest.py's moto tests)",
        "_reject": "writes the quarantine to S3 (test_manifest.py's moto tests, integration tests)",
        "_manifest_body": "reads S3 (test_manifest.py's moto tests, integration tests)",
        "start_month_execution": "reads S3 and starts a Step Functions execution (moto tests, integration tests)",
        "_start": "starts a Step Functions execution (test_manifest.py's moto tests, integration tests)",
    },
}
PRAGMA = "  # pragma: no mutate block"
# Not in the oracle: starts a Python process per case (seconds a mutant); the known-answer
# test pins the same property.
PYTEST_ARGS = ["-p", "no:cacheprovider",
               "--deselect", "tests/unit/test_split.py::test_answer_is_stable_across_processes_as_a_hash_of_the_id"]
# mutmut leaves decorated functions alone; a @contextmanager is staged as a plain function
# wrapped afterwards (same behaviour), so its body is mutated too.
DECORATED = re.compile(r"^@contextmanager\ndef (\w+)\(", re.M)
# Files of the repository some oracle tests read (test_manifest.py: the JSON Schema file, the
# README's manifest section, template.yaml's parameters; test_lease.py: Promote's Task timeout
# in the ASL), staged beside the code.
ALSO_COPY = ["docs/manifest.schema.json", "README.md", "template.yaml", "infra/statemachine/pipeline.asl.json"]
# A mutant that makes the tests time out is caught (mutmut counts it apart; so do we, below).
CAUGHT = {"killed", "timeout", "caught by type check"}
MUTANT = re.compile(r"^\s*(streamflow\.(\w+)\.\S+__mutmut_\d+): (.+)$")
# "- `streamflow.mod.x_fn__mutmut_N` `the changed line`: why it is equivalent"
EQUIVALENT_LINE = re.compile(r"^- `(streamflow\.[^`]+__mutmut_\d+)` `(.+?)`: (.+)$")


def _stage(modules: list[str]) -> None:
    """build/mutation: src/streamflow (the core), tests/unit, pyproject.toml."""
    shutil.rmtree(STAGE, ignore_errors=True)
    (STAGE / "src").mkdir(parents=True)
    shutil.copytree(CORE, STAGE / "src" / "streamflow", ignore=shutil.ignore_patterns("__pycache__"))
    for module, functions in NOT_MUTATED.items():
        path = STAGE / "src" / "streamflow" / f"{module}.py"
        lines = path.read_text().splitlines()
        for name in functions:
            start = next(i for i, line in enumerate(lines) if line.startswith(f"def {name}("))
            end = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith(":"))
            lines[end] += PRAGMA
        path.write_text("\n".join(lines) + "\n")
    for path in (STAGE / "src" / "streamflow").glob("*.py"):
        text = path.read_text()
        names = DECORATED.findall(text)
        if path.stem in MODULES and names:
            text = DECORATED.sub(lambda m: f"def _{m.group(1)}_undecorated(", text)
            text += "".join(f"\n{name} = contextmanager(_{name}_undecorated)\n" for name in names)
            path.write_text(text)
    SELECTED.write_text("\n".join(modules) + "\n")
    _stage_tests(modules)


def _stage_tests(modules: list[str]) -> None:
    """The unit tests and mutmut's settings (again before a retest: new tests count)."""
    shutil.rmtree(STAGE / "tests", ignore_errors=True)
    for name in ALSO_COPY:
        (STAGE / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, STAGE / name)
    shutil.copytree(UNIT, STAGE / "tests" / "unit", ignore=shutil.ignore_patterns("__pycache__"))
    tests = sorted({f"tests/unit/{name}" for module in modules for name in MODULES[module]})
    only = [f"src/streamflow/{module}.py" for module in modules]
    (STAGE / "pyproject.toml").write_text(
        "# Written by tests/mutation/mutate.py for `make mutate`; not the project's pyproject.toml.\n"
        "[tool.mutmut]\n"
        'source_paths = ["src/streamflow"]\n'
        f"only_mutate = {only!r}\n"
        f"pytest_add_cli_args_test_selection = {tests!r}\n"
        f"pytest_add_cli_args = {PYTEST_ARGS!r}\n"
        f"also_copy = {sorted({name.split('/')[0] for name in ALSO_COPY})!r}\n"
        "use_git_change_detection = false\n\n"
        "[tool.pytest.ini_options]\n"
        'filterwarnings = ["ignore::DeprecationWarning", "ignore::FutureWarning"]\n'
    )


def equivalent_mutants() -> dict[str, tuple[str, str]]:
    """Mutant name → (its change, why it is equivalent), from the bullet list in equivalent.md."""
    found = {}
    for line in EQUIVALENT.read_text().splitlines():
        match = EQUIVALENT_LINE.match(line)
        if match:
            found[match.group(1)] = (match.group(2), match.group(3))
    return found


def function_of(mutant: str) -> str:
    """``streamflow.contract.x__first_bad__mutmut_2`` → ``streamflow.contract.x__first_bad``."""
    return mutant.rsplit("__mutmut_", 1)[0]


def mutant_changes(mutants_dir: Path) -> dict[str, str]:
    """Every mutant's change as one line: its new source lines (or the removed ones) against
    the original function. mutmut numbers a function's mutants in order, so an edit of the
    function renumbers them; equivalent.md names each mutant with its change, which is matched
    instead of the number (a listed change that is no longer generated is reported as stale)."""
    changes: dict[str, str] = {}
    for path in sorted((mutants_dir / "src" / "streamflow").glob("*.py")):
        text = path.read_text()
        file_lines = text.splitlines()
        sources = {node.name: file_lines[node.lineno:node.end_lineno]  # the body, without the def line
                   for node in ast.walk(ast.parse(text))
                   if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name}
        for name, lines in sources.items():
            base, _, number = name.rpartition("__mutmut_")
            if not number.isdigit() or f"{base}__mutmut_orig" not in sources:
                continue
            diff = list(difflib.unified_diff(sources[f"{base}__mutmut_orig"], lines, n=0, lineterm=""))[2:]
            added = [d[1:].strip() for d in diff if d.startswith("+")]
            removed = [d[1:].strip() for d in diff if d.startswith("-")]
            change = " ⏎ ".join(added) if added else "(removed) " + " ⏎ ".join(removed)
            changes[f"streamflow.{path.stem}.{name}"] = change
    return changes


def equivalent_by_change(results: dict[str, str], listed: dict[str, tuple[str, str]],
                         changes: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(mutant → reason for each mutant of this run that equivalent.md lists by its function
    and change, the listed names whose change this run no longer generates)."""
    wanted = {(function_of(name), change): reason for name, (change, reason) in listed.items()}
    matched = {name: wanted[(function_of(name), changes.get(name, ""))] for name in results
               if (function_of(name), changes.get(name, "")) in wanted}
    seen = {(function_of(name), changes.get(name, "")) for name in results}
    stale = sorted(name for name, (change, _) in listed.items() if (function_of(name), change) not in seen)
    return matched, stale


def _results() -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=STAGE,
                         capture_output=True, text=True, check=True).stdout
    return {m.group(1): m.group(3).strip() for m in map(MUTANT.match, out.splitlines()) if m}


def _staged_modules() -> list[str]:
    return SELECTED.read_text().split() if SELECTED.is_file() else list(MODULES)


def report(results: dict[str, str], equivalent: dict[str, str], min_score: float,
           modules: list[str] | None = None, stale: list[str] | None = None,
           changes: dict[str, str] | None = None) -> bool:
    """Print the score per module; True when every module reaches ``min_score``.
    ``equivalent``: the mutants of this run judged equivalent (see ``equivalent_by_change``)."""
    modules = list(MODULES) if modules is None else modules
    by_module: dict[str, Counter] = defaultdict(Counter)
    survivors: list[str] = []
    for name, status in results.items():
        module = name.split(".")[1]
        if status == "not checked":  # an interrupted run: left out of the score, counted apart
            by_module[module]["unchecked"] += 1
            continue
        if status in CAUGHT:
            by_module[module]["killed"] += 1
            by_module[module]["timeout"] += status == "timeout"
        elif name in equivalent:
            by_module[module]["equivalent"] += 1
        else:
            by_module[module]["survived"] += 1
            survivors.append(f"{name}: {status}: `{(changes or {}).get(name, '?')}`")
        by_module[module]["mutants"] += 1
    stale = [name for name in stale or [] if name.split(".")[1] in modules]
    ok = True
    header = ("module", "mutants", "killed", "(timeout)", "equiv.", "survived", "unchecked", "score")
    print("\n" + f"{header[0]:<12}" + "".join(f"{h:>10}" for h in header[1:]))

    def row(label: str, c: Counter) -> float:
        judged = c["mutants"] - c["equivalent"]
        score = 100.0 * c["killed"] / judged if judged else 100.0
        print(f"{label:<12}" + "".join(f"{c[k]:>10}" for k in ("mutants", "killed", "timeout", "equivalent",
                                                                "survived", "unchecked")) + f"{score:>9.1f}%")
        return score

    for module in modules:
        ok &= row(module, by_module[module]) >= min_score and not by_module[module]["unchecked"]
    row("all", sum((by_module[m] for m in modules), Counter()))
    if survivors:
        print("\nsurvivors not listed in tests/mutation/equivalent.md (see: cd build/mutation && mutmut show NAME):")
        print("\n".join(f"  {s}" for s in sorted(survivors)))
    if stale:
        print("\nlisted as equivalent but this change of the function is no longer generated"
              " (the code changed; update equivalent.md):")
        print("\n".join(f"  {s}" for s in stale))
    print(f"\nscore = killed / (mutants - equivalent - unchecked); every module must reach {min_score:.0f} %"
          " with no mutant unchecked: "
          + ("yes" if ok else "NO"))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=list(MODULES),
                        help="mutate only this module (repeatable; default: all)")
    parser.add_argument("--max-children", type=int, default=2, help="parallel mutant runs (default 2)")
    parser.add_argument("--min-score", type=float, default=90.0)
    parser.add_argument("--report-only", action="store_true", help="report the last run in build/mutation")
    parser.add_argument("--retest", action="store_true",
                        help="run the last run's survivors again with the current unit tests")
    parser.add_argument("--resume", action="store_true",
                        help="go on with an interrupted run: the mutants it did not check yet")
    parser.add_argument("mutants", nargs="*", help="mutant names or globs to run (with --retest: as well)")
    args = parser.parse_args(argv)
    if (args.report_only or args.retest or args.resume or args.mutants) and not STAGE.is_dir():
        parser.error(f"no earlier run in {STAGE}: run `make mutate` (optionally with --module) first")
    started = time.monotonic()
    mutmut_run = [sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)]
    if args.retest:
        results = _results()
        equivalent, _ = equivalent_by_change(results, equivalent_mutants(), mutant_changes(STAGE / "mutants"))
        survivors = [name for name, status in results.items()
                     if status not in CAUGHT | {"not checked"} and name not in equivalent]
        _stage_tests(_staged_modules())
        if survivors or args.mutants:
            subprocess.run(mutmut_run + survivors + args.mutants, cwd=STAGE, check=True)
    elif args.resume:  # mutmut skips the mutants it has a result for
        subprocess.run(mutmut_run, cwd=STAGE, check=True)
    elif args.mutants:  # only these (names or globs), run again even when they have a result
        subprocess.run(mutmut_run + args.mutants, cwd=STAGE, check=True)
    elif not args.report_only:
        _stage(args.module or list(MODULES))
        subprocess.run(mutmut_run, cwd=STAGE, check=True)
    results = _results()
    staged = _staged_modules()
    listed = {name: entry for name, entry in equivalent_mutants().items() if name.split(".")[1] in staged}
    changes = mutant_changes(STAGE / "mutants")
    equivalent, stale = equivalent_by_change(results, listed, changes)
    ok = report(results, equivalent, args.min_score, staged, stale, changes)
    print(f"mutation run: {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
