# Teamgate: `make run` serves it, `make test` runs the whole suite. Both set themselves up.
PYTHON ?= python3
VENV := .venv
PORT ?= 4000
WORKERS ?= 2
THREADS ?= 32

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

clean:
	rm -rf $(VENV) .pytest_cache
