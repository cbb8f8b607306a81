# Two commands on a fresh machine: `make run` (start the app with the embedded model) and `make test` (every test).
# Both create .venv on first use and re-install only when a requirements file changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
ARGS ?=

export GRADIO_ANALYTICS_ENABLED := False

.PHONY: run test bench soak setup chromium clean

run: $(STAMP)
	$(PY) app.py --profile embedded $(ARGS)

test: $(STAMP) chromium
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(ARGS)

# Speed and memory against bare transformers on the same model; writes docs/performance.md (~25 min on 2 CPU cores).
bench: $(STAMP)
	$(PY) -m bench.run --write $(ARGS)

# The 1,000-request soak alone (make test runs it too).
soak: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest tests/test_reliability_soak.py -q -s $(ARGS)

setup: $(STAMP)

# Debian ships venv separately (python3-venv): install it when creating the environment fails and we are root.
$(PY):
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); [ "$$(id -u)" = 0 ] && apt-get update \
		&& apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }

# The stamp is newer than both requirements files once they are installed.
$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install -r requirements-dev.txt
	touch $(STAMP)

# Browser tests drive Debian's chromium with the Python playwright package (no browser download).
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "Installing chromium for the browser tests (apt-get)"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update && apt-get install -y chromium; \
		else sudo apt-get update && sudo apt-get install -y chromium; fi; \
	fi

clean:
	rm -rf .pytest_cache .hypothesis
