# Two commands for a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check

.PHONY: demo test lint install install-dev serve worker bench clean lock

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --upgrade pip

# requirements.lock pins every dependency (dev tools too); pyproject.toml keeps the ranges
$(VENV)/.installed: pyproject.toml requirements.lock | $(PY)
	$(PIP) install -r requirements.lock
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements.lock $(VENV)/.installed
	$(PIP) install -e '.[dev]'
	touch $@

lock: install-dev
	$(VENV)/bin/pip-compile --quiet --strip-extras --extra dev --no-emit-index-url --no-emit-find-links \
		-o requirements.lock pyproject.toml

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(VENV)/bin/tuangou demo

lint: install-dev
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy src
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest

serve: install
	$(VENV)/bin/tuangou serve --with-worker

worker: install
	$(VENV)/bin/tuangou worker

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
