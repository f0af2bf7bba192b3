# StreamFlow: `make demo` runs the whole loop locally; `make test` runs every test.
# Everything is installed into .venv from this repository's files.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: help venv demo test unit integration lint up down deploy clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.txt constraints.txt layers/deps/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements.txt -c constraints.txt
	$(PIP) install --quiet --no-deps -e .
	touch $@

venv: $(STAMP)  ## create .venv with everything the project needs

demo: venv  ## start the local stack, deploy, train the first champion, run month_001, predict (KEEP=1 leaves it up)
	$(VENV)/bin/streamflow demo $(if $(KEEP),--keep)

test: venv  ## unit + integration tests (starts its own local stack on spare ports)
	$(PY) -m pytest tests

unit: venv  ## unit tests only (no services)
	$(PY) -m pytest tests/unit

integration: venv  ## integration tests only (real emulator, MLflow server, handlers)
	$(PY) -m pytest tests/integration

lint: venv  ## cfn-lint the template
	$(VENV)/bin/cfn-lint template.yaml

up: venv  ## start the local stack and deploy template.yaml
	$(VENV)/bin/streamflow up --deploy

down: venv  ## stop the local stack
	$(VENV)/bin/streamflow down

clean:  ## stop the stack and remove its state (.local-stack) and build output
	-[ -x $(VENV)/bin/streamflow ] && $(VENV)/bin/streamflow down
	rm -rf .local-stack .aws-sam .pytest_cache
