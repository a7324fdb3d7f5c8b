# Teamgate: `make run` serves it, `make test` runs the whole suite. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PORT ?= 4000

.PHONY: run test bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(VENV)/bin/pip install -q -r requirements-test.txt
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/flask --app wsgi setup
	@echo "Teamgate on http://localhost:$(PORT)  (dashboard: http://localhost:$(PORT)/ui/)"
	$(VENV)/bin/gunicorn --config gunicorn.conf.py --bind 0.0.0.0:$(PORT) wsgi:app

test: $(VENV)/.installed-test
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Side-by-side benchmark (bench/README.md): direct upstream, Teamgate, LiteLLM proxy.
BENCH_TOOLS := bench/.venv-tools
BENCH_LITELLM := bench/.venv-litellm
LITELLM_VERSION ?= 1.110.2
BENCH_ARGS ?=

$(BENCH_TOOLS)/.installed:
	$(PYTHON) -m venv $(BENCH_TOOLS)
	$(BENCH_TOOLS)/bin/pip install -q aiohttp psutil py-spy
	touch $@

$(BENCH_LITELLM)/.installed:
	$(PYTHON) -m venv $(BENCH_LITELLM)
	$(BENCH_LITELLM)/bin/pip install -q --upgrade pip packaging
	$(BENCH_LITELLM)/bin/pip install -q litellm==$(LITELLM_VERSION)
	$(BENCH_LITELLM)/bin/python bench/install_litellm.py
	touch $@

bench: $(VENV)/.installed $(BENCH_TOOLS)/.installed $(BENCH_LITELLM)/.installed
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	cd bench && TEAMGATE_PYTHON=$(abspath $(VENV))/bin/python timeout 900 \
		.venv-tools/bin/python run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
