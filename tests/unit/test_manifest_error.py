"""A refused manifest becomes violations of _MANIFEST.json in the quarantine report, and an
error text that names the key and the first five broken rules, then how many more."""

from __future__ import annotations

from streamflow.ingest import ManifestError
from streamflow.violations import Violation

KEY = "months/month_001/_MANIFEST.json"


def _violations(n: int) -> list[Violation]:
    return [Violation("_MANIFEST.json" if i % 2 else f"f{i}.csv", "", f"rule {i}", "e" if i == 0 else "")
            for i in range(n)]


def test_the_error_carries_its_violations_for_the_quarantine_report():
    violations = _violations(2)
    error = ManifestError(KEY, violations)
    assert error.violations == violations and error.violation == violations[0]
    assert str(error) == f"{KEY}: f0.csv: rule 0 (e.g. e); _MANIFEST.json: rule 1"
    assert isinstance(error, ValueError)


def test_past_five_the_rest_are_counted():
    error = ManifestError(KEY, _violations(7))
    assert str(error) == f"{KEY}: " + "; ".join(str(v) for v in _violations(5)) + "; and 2 more"
    assert len(error.violations) == 7
