# ClinicNet set-up. Two commands do everything on a fresh machine:
#   make run    set up, then serve on http://$(HOST):$(PORT)/
#   make test   set up, then lint, type-check and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
APT_PACKAGES_TEST := chromium
APT_PACKAGES := gettext fonts-noto-cjk

.PHONY: run test setup venv system-deps test-system-deps migrate messages lint typecheck clean worker frontend frontend-test

run: setup
	@echo ""
	@echo "ClinicNet is starting on http://$(HOST):$(PORT)/  (stop with Ctrl-C)"
	@echo ""
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

test: setup test-system-deps lint typecheck frontend-test
	$(PY) -m pytest

setup: system-deps venv frontend
	$(PY) manage.py migrate --noinput
	$(PY) manage.py compilemessages --ignore=.venv --ignore=node_modules -v0
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py load_demo

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

# --- Viewer (frontend/): TypeScript, Vite, Cornerstone3D ----------------------
# `npm ci` runs when node_modules is missing or older than package-lock.json;
# `vite build` runs when a source changed. Output: frontend/dist/ (git-ignored),
# published by collectstatic. No download at run time: codecs and workers are
# in the bundle.
NPM ?= npm
FRONTEND_SOURCES := $(shell find frontend/src -type f 2>/dev/null) frontend/vite.config.ts frontend/tsconfig.json
frontend: frontend/dist/manifest.json

node_modules/.installed: package-lock.json package.json
	$(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

frontend/dist/manifest.json: node_modules/.installed $(FRONTEND_SOURCES)
	$(NPM) run --silent build

frontend-test: node_modules/.installed
	$(NPM) run --silent typecheck
	$(NPM) run --silent test
# --- End of viewer -------------------------------------------------------------

# Debian packages: installed only when missing (needs root or sudo).
define apt_install
	missing=""; for pkg in $(1); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

system-deps:
	@$(call apt_install,$(APT_PACKAGES))

test-system-deps:
	@$(call apt_install,$(APT_PACKAGES_TEST))

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

# Regenerate the translation catalogues after changing user-facing strings.
messages: venv
	$(PY) manage.py makemessages -l ko -l en --ignore=.venv --ignore=node_modules --ignore=staticfiles --no-obsolete

# A Celery worker for the production shape (REDIS_URL set).
worker: venv
	$(VENV)/bin/celery -A clinicnet worker -l info -Q emergency,default

clean:
	rm -rf $(VENV) staticfiles var node_modules frontend/dist
