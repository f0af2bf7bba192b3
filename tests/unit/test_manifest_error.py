"""A refused manifest becomes one violation of _MANIFEST.json in the quarantine report,
and an error text that names the key, the rule and the example."""

from __future__ import annotations

from streamflow.ingest import ManifestError
from streamflow.violations import Violation


def test_the_error_carries_the_violation_for_the_quarantine_report():
    error = ManifestError("months/month_001/_MANIFEST.json", "must be valid JSON", "line 1")
    assert error.violation == Violation("_MANIFEST.json", "", "must be valid JSON", "line 1")
    assert str(error) == "months/month_001/_MANIFEST.json: must be valid JSON (line 1)"
    assert isinstance(error, ValueError)


def test_without_an_example_the_text_has_no_parentheses():
    error = ManifestError("months/x/_MANIFEST.json", "month name must match month_NNN")
    assert str(error) == "months/x/_MANIFEST.json: month name must match month_NNN"
    assert error.violation == Violation("_MANIFEST.json", "", "month name must match month_NNN", "")
