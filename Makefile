# Two commands do everything on a fresh machine with Python 3.11+ and Node:
#   make run    set up, then start the server
#   make test   set up (with test tools), then run the whole suite
# and one more starts several workers behind nginx (needs nginx and redis-server installed):
#   make cluster [WORKERS=3] [PORT=8000]   nginx on PORT, workers on PORT+1.., Ctrl-C stops all
# and one compares this server with Node's socket.io, side by side (a few minutes; not in make test):
#   make bench [BENCH_ARGS='--fanout-members 500 --connect-clients 10000']
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.runtime-installed
DEV_STAMP := $(VENV)/.dev-installed
NPM_STAMP := client/node_modules/.installed
BENCH_NPM_STAMP := bench/node/node_modules/.installed
BENCH_ARGS ?=
WORKERS ?= 3
PORT ?= 8000

.PHONY: setup setup-dev run cluster test bench clean

setup: $(RUNTIME_STAMP) $(NPM_STAMP)

setup-dev: setup $(DEV_STAMP)

run: setup
	$(BIN)/python run.py

cluster: setup
	$(BIN)/python -m deploy.cluster --workers $(WORKERS) --port $(PORT)

test: setup-dev
	$(BIN)/python -m pytest

bench: setup $(BENCH_NPM_STAMP)
	$(BIN)/python -m bench.compare $(BENCH_ARGS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements-dev.txt requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

$(NPM_STAMP): client/package.json client/package-lock.json
	cd client && npm ci --no-audit --no-fund
	touch $@

$(BENCH_NPM_STAMP): bench/node/package.json bench/node/package-lock.json
	cd bench/node && npm ci --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) client/node_modules bench/node/node_modules test-output .pytest_cache
	@echo "make clean keeps the chat history in instance/chat.db; rm -rf instance resets it"
