# MedMax Review: `make demo` runs the app with its demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# llama-cpp-python compiles from source; a native build crashes on other CPUs of the same family.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/medmax
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: demo install install-test test lint services serve worker

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel

install: $(VENV)/bin/activate
	$(PIP) install --quiet -e ".[local]"

install-test: $(VENV)/bin/activate
	$(PIP) install --quiet -e ".[local,embeddings,test]"
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

# Sets up, migrates, creates an admin and a reviewer (passwords printed once), loads the demo
# data, generates candidates, then serves http://127.0.0.1:8000 with a worker beside it.
demo: install
	$(PY) manage.py migrate --no-input
	$(PY) manage.py collectstatic --no-input -v0
	$(PY) manage.py load_demo
	$(PY) manage.py run_all

lint: install-test
	$(VENV)/bin/ruff check medmax_review tests bench
	$(PY) manage.py makemigrations --check --dry-run

services:
	$(PY) -m medmax_review.core.services_check "$(TEST_DATABASE_URL)" "$(TEST_BROKER_URL)"

test: install-test lint services
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	  $(VENV)/bin/pytest $(PYTEST_ARGS)
