# Two commands on a fresh Debian 12 (root, Python 3.11, make, apt): `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
DEPS   := scripts/install-system-deps.sh
SOURCES := mrv_core agent collector tests bench scripts

.PHONY: demo test lint typecheck unit bench bench-verify bench-report system-test-deps clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# Debian packages the tests need: brokers and InfluxDB they start on free loopback ports in
# temp folders, Chromium to look at the status page as a person would, and socat for the
# pseudo-terminal pairs that carry Modbus RTU, mbpoll, a Modbus client that is not ours, and
# LibreOffice (headless calc) to recalculate the xlsx monitoring report as a person would.
system-test-deps:
	@$(DEPS) mosquitto:mosquitto influxdb:influxd chromium:chromium socat:socat mbpoll:mbpoll libreoffice-calc-nogui:soffice

demo: $(STAMP)
	@$(DEPS) --optional mosquitto:mosquitto || { echo "demo: no Mosquitto here; using the embedded amqtt broker"; \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[demo]'; }
	$(BIN)/python -m scripts.demo

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) system-test-deps lint typecheck
	$(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

# The whole chain (agent -> Mosquitto -> collector -> SQLite, InfluxDB), one collector's ingest
# rate into InfluxDB from a backlog waiting in Mosquitto, and the agent's CPU per value polling
# 20 and 100 meters every second.
bench: $(STAMP) system-test-deps
	$(BIN)/python -m bench.e2e
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.acquisition

# Records verified per second on one core, on a 5-million-record bundle generated once into .bench/
# (about half an hour the first time); RECORDS=300000 for a quick look.
RECORDS ?= 5000000
bench-verify: $(STAMP)
	$(BIN)/python -m bench.verify --records $(RECORDS)

# A monitoring year of one-minute readings from 50 meters (26 million records, ~20 GB of SQLite
# written once into .bench/): the report's time and peak memory; DAYS=7 for a quick look;
# STORE=influxdb fills a private InfluxDB instead (every run; about 15 s a day of records) and
# removes it afterwards.
DAYS ?= 365
STORE ?= sqlite
bench-report: $(STAMP)
	@if [ "$(STORE)" = influxdb ]; then $(DEPS) influxdb:influxd; fi
	$(BIN)/python -m bench.year_report --days $(DAYS) --store $(STORE)

clean:
	rm -rf $(VENV) .demo .bench .pytest_cache .mypy_cache .ruff_cache *.egg-info
