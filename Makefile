# Everything a newcomer runs. `make test` works from a fresh clone: it creates the two
# virtual environments it needs, then runs every check CI runs.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# aws-sam-cli pins boto3, click and pydantic; it gets its own environment so the
# application's dependencies are the ones the layer ships, not SAM's.
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_CLI_VERSION := 1.170.0
# checkov (the template's security checks) pins its own world too.
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30

# sam validate needs a region; no credentials are needed or used.
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

# The dashboard's browser test drives Debian's Chromium (no browser download).
CHROMIUM := /usr/bin/chromium

.PHONY: install run demo lint typecheck validate security build browser unit test fuzz prove bench economics clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(SAM_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

$(CHECKOV_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $@

install: $(BIN)/.installed $(SAM_VENV)/.installed

# The whole bundle on the local stack: the corpus uploaded, taken through its lifecycle
# (TEMP, HOT, COLD), then the API and dashboard served on 127.0.0.1:3000 until Ctrl-C.
run: $(BIN)/.installed
	$(BIN)/shelflife demo --serve --port 3000

# The same, exiting when done (CI runs it as part of `make test`).
demo: $(BIN)/.installed
	$(BIN)/shelflife demo --port 0

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

validate: install
	$(SAM) validate --lint --template template.yaml
	$(BIN)/cfn-lint template.yaml

# Zero failed checks; every skip is justified in the resource's Metadata. No network:
# --skip-download keeps checkov from fetching its online guidelines.
security: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation \
		--compact --quiet --skip-download

# No container: the layer's arm64 wheels are downloaded for the target platform.
build: $(SAM_VENV)/.installed
	$(SAM) build --template template.yaml

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	$$sudo apt-get update -qq && \
	$$sudo apt-get install -y -qq --no-install-recommends chromium

browser: $(CHROMIUM)

unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit tests/contract

# The proofs' extras (atheris, schemathesis) too: CI runs a fast subset of make prove.
test: lint typecheck validate security build browser $(BIN)/.prove-installed
	$(BIN)/pytest
	$(BIN)/shelflife demo --port 0

# Benchmarks print ratios against references measured in the same run; they assert
# nothing. Their extra dependencies (pyvips with its libvips wheel, numpy) stay out of
# the test environment's requirements.
$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

# Issue 9's proofs (docs/RELIABILITY.md has the latest figures): the template's security
# checks, the hostile-input campaign, schemathesis and the cross-user matrix against the
# local stack, the fault campaign, 1,000 histories of duplicate and reordered delivery,
# the 2,000-upload load run and a minute of coverage-guided fuzzing. 15.5-19 minutes
# from a fresh clone here, installs included; any failure stops it with a non-zero
# exit. `make test` runs a fast subset of each.
$(BIN)/.prove-installed: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[dev,prove]'
	touch $@

FUZZ_SECONDS ?= 60

fuzz: $(BIN)/.prove-installed
	$(BIN)/python -m shelflife_tools.prove.fuzz_compress ../shared/corpus \
		-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1536

REDELIVERY_RUNS ?= 1000
LOAD_UPLOADS ?= 2000

prove: security $(BIN)/.prove-installed
	$(BIN)/python -m shelflife_tools.prove.hostile ../shared/corpus
	$(BIN)/python -m shelflife_tools.prove.api_fuzz ../shared/corpus
	$(BIN)/python -m tests.prove.faults
	SHELFLIFE_REDELIVERY_RUNS=$(REDELIVERY_RUNS) $(BIN)/pytest -q \
		tests/unit/test_redelivery_property.py --hypothesis-show-statistics
	$(BIN)/python -m shelflife_tools.prove.load --uploads $(LOAD_UPLOADS)
	$(MAKE) fuzz

bench: $(BIN)/.bench-installed
	$(BIN)/python -m bench.compression
	$(BIN)/python -m bench.capacity
	$(BIN)/python -m bench.lifecycle
	$(BIN)/python -m bench.variants
	$(BIN)/python -m bench.ingest

# What the store costs against every alternative on the reference workload (issue 21).
economics: $(BIN)/.installed
	$(BIN)/python -m bench.economics

clean:
	rm -rf .aws-sam .mypy_cache .pytest_cache .ruff_cache
