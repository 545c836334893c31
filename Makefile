# The two commands of the README: `make demo` (the embedded default) and `make test`.
# Both work inside a project virtual environment (.venv), never in the system interpreter, so a stock
# Debian/Ubuntu python3 (PEP 668, "externally managed") works as well as any other.
PYTHON ?= python3
VENV ?= .venv
VENV_PY := $(VENV)/bin/python
# The CPU torch wheel lies in /opt/wheels on our machines; anywhere else pip finds it on its index.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

.PHONY: demo test venv

venv: $(VENV_PY)

$(VENV_PY):
	@$(PYTHON) -m venv $(VENV) || { echo "make: '$(PYTHON) -m venv' failed; on Debian/Ubuntu: apt-get install python3-venv" >&2; exit 1; }
	$(VENV_PY) -m pip install -q --upgrade pip

demo: $(VENV_PY)
	$(VENV_PY) -m pip install -q -e '.[demo]'
	$(VENV)/bin/stream-tagger demo

test: $(VENV_PY)
	./scripts/setup-test-env.sh
	$(VENV_PY) -m pip install -q $(FIND_LINKS) -e '.[demo,train,dev]'
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV_PY) -m pytest
