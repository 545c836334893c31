# The two commands of the README: `make demo` (the embedded default) and `make test`.
PYTHON ?= python3

.PHONY: demo test install

install:
	$(PYTHON) -m pip install -q -e .

demo: install
	stream-tagger demo

test:
	./scripts/setup-test-env.sh
	$(PYTHON) -m pytest
