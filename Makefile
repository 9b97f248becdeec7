# hvc — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
TOOLS   := $(CURDIR)/.cache/tools
UV      := $(TOOLS)/bin/uv
PY      := $(CURDIR)/.venv/bin/python
INFRA   := $(PY) -m hvc.devinfra
GEN_DIR := libs/common/src
PROTOS  := $(wildcard proto/hvc/events/v1/*.proto)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.8

.venv/.synced: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml simulator/pyproject.toml)
	$(UV) sync --frozen
	touch $@

.PHONY: setup
setup: .venv/.synced ## install the locked Python environment (idempotent)

.PHONY: bootstrap
bootstrap: setup ## fetch and build Kafka and FerretDB into .local/ (idempotent)
	@command -v kubectl >/dev/null || { apt-get update -qq && apt-get install -y -qq kubectl; }
	@# the workbench's browser tests: Debian's chromium, and a font with Chinese glyphs
	@command -v chromium >/dev/null && dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei; }
	$(INFRA) fetch

.PHONY: infra-up
infra-up: bootstrap ## start the local broker and store, create topics from the registry
	$(INFRA) up

.PHONY: run
run: infra-up ## run the whole platform locally: broker, store, all five services
	$(INFRA) services-up

.PHONY: down
down: ## stop what `make run` started (by pid)
	@if [ -x $(PY) ]; then $(INFRA) down; else echo "nothing to stop"; fi

.PHONY: status
status: setup ## show what is running and whether it answers (the store within 5 s, each /readyz)
	$(INFRA) status

.PHONY: heal
heal: setup ## restart the local store if it runs but does not answer (its goroutines go to the logs)
	$(INFRA) heal

.PHONY: test
test: bootstrap ## run the whole suite: lint, contract check, unit, integration, e2e
	$(MAKE) --no-print-directory lint proto-check
	$(PY) -m pytest

.PHONY: unit
unit: setup ## run only the tests that need no broker or store
	$(PY) -m pytest -m "not integration and not e2e"

.PHONY: lint
lint: setup ## ruff, ruff format --check, mypy
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy libs/common/src libs/devinfra/src services/*/src simulator/src

.PHONY: fmt
fmt: setup ## apply ruff fixes and formatting
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

.PHONY: proto
proto: setup ## regenerate the Python contract code and stubs from proto/
	$(call protoc,$(GEN_DIR))

.PHONY: proto-check
proto-check: setup ## fail when the committed generated code is stale
	@tmp=$$(mktemp -d); \
	$(call protoc,$$tmp); \
	if diff -r -x __pycache__ -x '__init__.py' $$tmp/hvc/events $(GEN_DIR)/hvc/events; then echo "proto: generated code is current"; \
	else echo "proto: generated code is stale, run 'make proto'" >&2; rm -rf $$tmp; exit 1; fi; rm -rf $$tmp

define protoc
	$(PY) -m grpc_tools.protoc -Iproto \
	  --plugin=protoc-gen-mypy=$(CURDIR)/.venv/bin/protoc-gen-mypy \
	  --python_out=$(1) --mypy_out=$(1) $(PROTOS)
endef

SERVICES := tiering warnings benefits complaints gateway
IMAGE_TAG ?= 0.1.0

.PHONY: k8s
k8s: setup ## regenerate deploy/k8s from the topic registry and the services
	$(PY) deploy/k8s/generate.py

.PHONY: k8s-check
k8s-check: bootstrap ## render both overlays and validate them offline (also in make test)
	$(PY) deploy/k8s/generate.py --check
	$(PY) -m pytest -q tests/deploy

.PHONY: images
images: ## build the five service images (needs a Docker engine)
	@for s in $(SERVICES); do \
	  docker build -f deploy/docker/Dockerfile --build-arg SERVICE=$$s \
	    -t registry.example.com/hvc/$$s:$(IMAGE_TAG) . || exit 1; done

.PHONY: chaos
chaos: bootstrap ## the fault scenarios (poison, kill -9 loop, redelivery) and their report table
	$(PY) -m pytest tests/chaos -q

.PHONY: soak
soak: bootstrap ## 30 minutes of the whole platform, feed, annual runs every 2 min and reads; figures
	HVC_SOAK_SECONDS=1800 HVC_SOAK_ANNUAL_EVERY_SECONDS=120 HVC_SOAK_CUSTOMERS=2000 \
	  $(PY) -m pytest tests/soak -q -p no:logging

.PHONY: bench
BENCH_ARGS ?=
bench: bootstrap ## run the benchmarks and print their figures (BENCH_ARGS="--customers 1000000")
	$(PY) bench/run.py $(BENCH_ARGS)

.PHONY: clean
clean: down ## remove the environment and the local broker/store data
	rm -rf .venv .local
