# StreamFlow: `make demo` runs the whole loop locally; `make test` runs every test.
# Everything is installed into .venv from this repository's files.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
# AWS's sagemaker-mlflow plugin, built as its layer is, beside .venv (never in it): see the end.
REGISTRY_PLUGIN := build/registry-plugin
# SAM CLI, samlocal, cfn-lint, actionlint live in their own venv: aws-sam-cli pins
# boto3/click low, which the runtime .venv must not inherit.
TOOLS_VENV  ?= .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
# The AWS CLI the integration tests drive the stack with: awscli pins its botocore exactly.
AWSCLI_VENV  ?= .venv-awscli
AWSCLI_STAMP := $(AWSCLI_VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: help venv tools awscli browser wrk demo test unit integration lint up down clean bench mutate images-check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt constraints.txt layers/deps/requirements.txt $(wildcard functions/*/requirements.txt) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt -c constraints.txt
	$(PIP) install --quiet --no-deps -e .
	touch $@

venv: $(STAMP) $(REGISTRY_PLUGIN)/.installed  ## create .venv with everything the project needs

$(TOOLS_STAMP): requirements-tools.txt constraints-tools.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r requirements-tools.txt -c constraints-tools.txt
	touch $@

tools: $(TOOLS_STAMP)  ## create .venv-tools: sam, samlocal, cfn-lint, actionlint (+ shellcheck)

$(AWSCLI_STAMP): requirements-awscli.txt
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(AWSCLI_VENV)/bin/python -m pip install --quiet -r requirements-awscli.txt
	touch $@

awscli: $(AWSCLI_STAMP)  ## create .venv-awscli: the AWS CLI (1.x) the integration tests drive the local stack with

# The dashboard's browser test drives a real headless Chromium: Debian's package (apt), never a
# browser downloaded at install time. Installed only when no Chromium is on PATH; sudo when not root.
BROWSERS := chromium chromium-browser google-chrome
browser:  ## a headless Chromium for the monitoring dashboard's browser test (apt-get install chromium when missing)
	@for b in $(BROWSERS); do command -v $$b >/dev/null && exit 0; done; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium

demo: venv  ## start the local stack, deploy, train the first champion, run month_001, predict (KEEP=1 leaves it up)
	$(VENV)/bin/streamflow demo $(if $(KEEP),--keep)

# pytest-xdist workers: the tests on the shared stack run in order on one, every other module
# (its own stacks) and the unit tests on the others (tests/integration/conftest.py).
# TEST_WORKERS=0 runs the suite in this process, one test after another.
TEST_WORKERS ?= 2
PYTEST_WORKERS = $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadgroup)

test: venv tools awscli browser  ## unit + integration tests on TEST_WORKERS=2 workers (own local stacks on spare ports; the dashboard in Chromium), SAM + workflow lint
	STREAMFLOW_REQUIRE_TOOLS=1 $(PY) -m pytest tests $(PYTEST_WORKERS) --durations=30

unit: venv  ## unit tests only (no services)
	$(PY) -m pytest tests/unit $(PYTEST_WORKERS)

integration: venv awscli browser  ## integration tests only (real emulator, MLflow server, handlers; the dashboard in Chromium)
	$(PY) -m pytest tests/integration $(PYTEST_WORKERS)

# wrk (C; not on PyPI) is the load tool of the /predict benchmark: a client nobody here wrote.
# Installed from the distribution's package when missing and we may (root + apt-get);
# otherwise stop with how to install it.
wrk:  ## make sure the `wrk` load tool is installed (apt-get install wrk as root on Debian/Ubuntu)
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing wrk with apt-get (the /predict benchmark's load tool)"; \
	    { apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }; }; \
	  else \
	    echo "make bench needs wrk: install it (apt-get install wrk / brew install wrk / dnf install wrk) and run again" >&2; \
	    exit 1; \
	  fi; }
	@wrk --version 2>&1 | head -1

BENCH_USERS ?= 10000,100000
bench: venv tools wrk  ## benchmarks on private stacks (incl. persistence on vs off): table + bench/results/*.json (BENCH_USERS=10000,100000 BENCH_ARGS=…)
	$(PY) -m bench --users $(BENCH_USERS) --load-tool wrk $(BENCH_ARGS)

MUTATE_STAMP := $(VENV)/.mutate-installed
$(MUTATE_STAMP): $(STAMP) requirements-mutate.txt constraints-mutate.txt
	$(PIP) install --quiet -r requirements-mutate.txt -c constraints.txt -c constraints-mutate.txt
	touch $@

MUTATE_ARGS ?=
mutate: venv $(MUTATE_STAMP)  ## mutation testing of the pure core with mutmut, score per module (slow: not in `make test`)
	nice -n 10 $(PY) tests/mutation/mutate.py $(MUTATE_ARGS)

images-check: venv  ## prove the seven container images without Docker: install each Dockerfile's wheels for Linux x86_64, import + run the handler isolated (downloads: minutes)
	$(PY) -m streamflow_local.image_check $(IMAGES)

lint: tools  ## sam validate --lint, cfn-lint and checkov the template, ruff the Python, actionlint the workflow
	SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam validate --lint --template template.yaml --region us-east-1
	$(TOOLS_VENV)/bin/cfn-lint template.yaml
	$(TOOLS_VENV)/bin/ruff check .
	$(TOOLS_VENV)/bin/actionlint -shellcheck $(TOOLS_VENV)/bin/shellcheck .github/workflows/ci.yml
	BC_SKIP_MAPPING=TRUE $(TOOLS_VENV)/bin/checkov --config-file .checkov.yaml -f template.yaml --compact --quiet

up: venv  ## start the local stack and deploy template.yaml
	$(VENV)/bin/streamflow up --deploy

down: venv  ## stop the local stack
	$(VENV)/bin/streamflow down

clean:  ## stop the stack and remove its whole state folder (.local-stack: say what goes) and build output
	-[ -x $(VENV)/bin/streamflow ] && STREAMFLOW_STATE_DIR=$(CURDIR)/.local-stack $(VENV)/bin/streamflow reset --all
	rm -rf .local-stack .aws-sam .pytest_cache

# AWS's sagemaker-mlflow plugin (layers/registry/): never in .venv, whose registry is a plain
# URI (the plugin's header provider would warn on every request). Built by the layer's own
# Makefile, as `sam build` builds RegistryPluginLayer (--no-deps), into build/registry-plugin/python,
# which tests/unit/test_registry_plugin.py puts on a subprocess's path beside .venv.
.PHONY: registry-plugin
$(REGISTRY_PLUGIN)/.installed: layers/registry/requirements.txt layers/registry/Makefile | $(STAMP)
	rm -rf $(REGISTRY_PLUGIN)
	$(MAKE) --no-print-directory -C layers/registry build-RegistryPluginLayer ARTIFACTS_DIR=$(CURDIR)/$(REGISTRY_PLUGIN) PYTHON=$(CURDIR)/$(PY)
	touch $@

registry-plugin: $(REGISTRY_PLUGIN)/.installed  ## AWS's sagemaker-mlflow plugin into build/registry-plugin (its layer's build; tests use it)
