"""The loop's policy (drift threshold, promotion delta, reference month) has one source:
template.yaml's parameters, written into every function's environment. No module keeps a
default of its own, so a value changed in the template is the value every step uses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from streamflow.ingest import execution_input
from streamflow.settings import POLICY_VARIABLES, PolicyNotConfigured, Settings
from streamflow.sharding import SHARD_USERS

ROOT = Path(__file__).resolve().parents[2]
POLICY_ENV = {"DRIFT_THRESHOLD": "0.07", "PROMOTION_DELTA": "0.003", "REFERENCE_MONTH": "previous"}


def _template() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)


def test_the_template_sets_every_policy_variable_from_its_parameter():
    text = (ROOT / "template.yaml").read_text()
    template = _template()
    for variable, parameter in POLICY_VARIABLES.items():
        assert parameter in template["Parameters"], parameter
        assert re.search(rf"^\s+{variable}: !Ref {parameter}\s*$", text, re.M), variable


def test_settings_read_the_policy_from_the_environment_given():
    settings = Settings.from_env(POLICY_ENV)
    assert (settings.drift_threshold, settings.promotion_delta, settings.reference_month) == (0.07, 0.003, "previous")
    assert settings.require_policy() is settings


def test_an_environment_without_the_policy_has_no_invented_defaults():
    settings = Settings.from_env({})
    assert (settings.drift_threshold, settings.promotion_delta, settings.reference_month) == (None, None, None)
    with pytest.raises(PolicyNotConfigured) as caught:
        settings.require_policy()
    for variable, parameter in POLICY_VARIABLES.items():
        assert variable in str(caught.value) and parameter in str(caught.value)


@pytest.mark.parametrize("missing", sorted(POLICY_ENV))
def test_a_month_is_not_started_without_each_policy_value(missing):
    env = {k: v for k, v in POLICY_ENV.items() if k != missing}
    with pytest.raises(PolicyNotConfigured, match=missing):
        execution_input(Settings.from_env(env), "month_001", "month_001-x", {})


def test_a_started_month_carries_the_environments_policy():
    event = execution_input(Settings.from_env(POLICY_ENV), "month_001", "month_001-x", {})
    assert (event["threshold"], event["delta"], event["reference_month"]) == (0.07, 0.003, "previous")


def test_no_module_keeps_its_own_default_for_the_policy():
    """The numbers live in template.yaml only (README quotes them from there)."""
    defaults = {str(_template()["Parameters"][p]["Default"]) for p in ("DriftThreshold", "PromotionDelta")}
    sources = [*ROOT.glob("layers/core/streamflow/*.py"), *ROOT.glob("infra/local/streamflow_local/*.py"),
               *ROOT.glob("functions/*/app.py")]
    for path in sources:
        for line in path.read_text().splitlines():
            if re.search(r"threshold|delta", line, re.I):
                for value in defaults:
                    assert not re.search(rf"(?<![\w.]){re.escape(value)}(?![\w])", line), (path.name, line)


def test_the_sampling_defaults_of_the_code_are_the_templates():
    """A function deployed without these variables (a test, a hand-made stack) must shard
    and sample as the template would: one default, held in two places, kept equal."""
    parameters = _template()["Parameters"]
    settings = Settings.from_env({})
    assert settings.users_per_shard == SHARD_USERS == int(parameters["UsersPerShard"]["Default"])
    assert settings.drift_sample_size == int(parameters["DriftSampleSize"]["Default"])
    assert settings.train_sample_size == int(parameters["TrainSampleSize"]["Default"])
