# Two entry points, both idempotent on a fresh clone:
#   make report   install into .venv and run the main job (the full conformance report)
#   make test     install into .venv (plus test tools and headless Chromium) and run the tests
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.lossconf-installed

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[all,test,sweep]'
	touch $@

install: $(STAMP)

report: $(STAMP)
	$(VENV)/bin/lossconf report

test: $(STAMP)
	bash scripts/install-chromium.sh
	$(VENV)/bin/python -m pytest -n 2 --durations=20

.PHONY: install report test
