"""`make mutate`'s configuration stays true to the code: the modules it mutates exist, the
oracle's test files exist, the equivalent-mutant list is well formed, and it is not part of
`make test` (it is slow)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _mutate():
    spec = importlib.util.spec_from_file_location("streamflow_mutate", ROOT / "tests" / "mutation" / "mutate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pure_core_is_mutated_with_existing_unit_tests_as_its_oracle():
    mutate = _mutate()
    assert set(mutate.MODULES) == {"promotion", "split", "contract", "violations", "ingest", "manifest", "checksums",
                                   "lease", "scorer", "scorer_export", "features"}
    for module, tests in mutate.MODULES.items():
        assert (ROOT / "layers" / "core" / "streamflow" / f"{module}.py").is_file(), module
        assert tests and all((ROOT / "tests" / "unit" / name).is_file() for name in tests), module
    for module, functions in mutate.NOT_MUTATED.items():
        source = (ROOT / "layers" / "core" / "streamflow" / f"{module}.py").read_text()
        assert all(re.search(rf"^def {name}\(", source, re.M) for name in functions), module


def test_every_equivalent_mutant_has_a_reason_and_names_a_listed_module():
    mutate = _mutate()
    listed = mutate.equivalent_mutants()
    text = mutate.EQUIVALENT.read_text()
    assert len(listed) == text.count("\n- `")  # no bullet the parser would skip
    for name, (change, reason) in listed.items():
        assert name.split(".")[1] in mutate.MODULES, name
        assert change.strip() and len(reason.split()) >= 3, name


def test_mutate_is_a_make_target_outside_make_test():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^mutate: .*## ", makefile, re.M)
    assert "nice -n 10 $(PY) tests/mutation/mutate.py" in makefile
    test_target = re.search(r"^test: (.*)$", makefile, re.M).group(1)
    assert "mutate" not in test_target
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "run: make mutate" in workflow and "workflow_dispatch" in workflow


def test_an_equivalent_mutant_is_known_by_its_change_not_its_number(tmp_path):
    """mutmut numbers a function's mutants in order: an edit above a listed mutant renumbers
    it, and the number alone would then excuse another mutant (a real survivor)."""
    mutate = _mutate()
    folder = tmp_path / "src" / "streamflow"
    folder.mkdir(parents=True)
    (folder / "demo.py").write_text(
        "def x_f__mutmut_orig(a):\n    b = a + 1\n    return b\n\n"
        "def x_f__mutmut_1(a):\n    b = a - 1\n    return b\n\n"
        "def x_f__mutmut_2(a):\n    b = a + 1\n    return None\n\n"
        "def x_f__mutmut_3(a):\n    return b\n")
    changes = mutate.mutant_changes(tmp_path)
    assert changes == {"streamflow.demo.x_f__mutmut_1": "b = a - 1", "streamflow.demo.x_f__mutmut_2": "return None",
                       "streamflow.demo.x_f__mutmut_3": "(removed) b = a + 1"}
    results = dict.fromkeys(changes, "survived")
    listed = {"streamflow.demo.x_f__mutmut_1": ("return None", "listed when it was number 1"),
              "streamflow.demo.x_f__mutmut_9": ("b = a * 1", "a change no longer generated")}
    equivalent, stale = mutate.equivalent_by_change(results, listed, changes)
    assert equivalent == {"streamflow.demo.x_f__mutmut_2": "listed when it was number 1"}
    assert stale == ["streamflow.demo.x_f__mutmut_9"]
