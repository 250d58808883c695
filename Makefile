# The single entry point: `make run` starts the app on the bundled sample, `make test` runs every test.
# Both create .venv and install everything first (Python packages and the Debian packages the tests use).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8501
APT_PACKAGES := chromium postgresql

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# Label Studio (server and official SDK) in a venv of its own: its pins (numpy < 2.3 through
# opencv-python-headless) conflict with ours; labelaudit runs the SDK there (docs/integrations.md).
LS_VENV := .venv-labelstudio
LS_STAMP := $(LS_VENV)/.installed
LABEL_STUDIO_VERSION := 1.23.2
export LABELAUDIT_LABELSTUDIO_PYTHON ?= $(CURDIR)/$(LS_VENV)/bin/python

.PHONY: run demo test test-fast install labelstudio-env system-deps lint bench clean

# Listens on 127.0.0.1 only; `labelaudit app --expose` shares it with other machines (docs/security.md).
run: install
	$(BIN)/labelaudit app sample_data/banking77 --port $(PORT)

# The leaders' demo: plant seeded label flips in the sample, scan, replay a simulated reviewer, then open
# the app on that dataset (the ROI page says the decisions are simulated). The first run takes minutes.
DEMO_WS := .labelaudit-demo
demo: install
	$(BIN)/python scripts/simulate_review.py --workspace $(DEMO_WS) | tee $(DEMO_WS).log
	LABELAUDIT_DATASET=$$(awk '/^flipped dataset:/ {print $$3}' $(DEMO_WS).log) \
		$(BIN)/labelaudit app --workspace $(DEMO_WS) --port $(PORT)

# A throwaway PostgreSQL on loopback for the review-store tests; stopped and deleted afterwards, also on failure.
test: install system-deps labelstudio-env
	@pg_env=$$(scripts/pg_test_server.sh start) || exit 1; eval "$$pg_env"; \
	trap 'scripts/pg_test_server.sh stop "$$LABELAUDIT_TEST_PG_DIR"' EXIT; \
	trap 'exit 130' INT TERM; \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Skip the slow and browser tests while iterating.
test-fast: install
	$(BIN)/python -m pytest -m "not slow and not browser and not postgres" $(PYTEST_ARGS)

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, pinned to the CPU wheel on this machine; otherwise a dependency pulls a multi-GB CUDA build.
# Then one tiny UMAP fit fills numba's on-disk cache, so the first map in the app does not compile.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -m scripts.warm_numba
	touch $(STAMP)

# The Label Studio server + SDK, and a migrated template data folder the tests copy (skips minutes of migrations).
labelstudio-env: $(LS_STAMP)

$(LS_STAMP): | $(STAMP)
	$(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/pip install -q --upgrade pip
	$(LS_VENV)/bin/pip install -q label-studio==$(LABEL_STUDIO_VERSION)
	$(LS_VENV)/bin/pip check
	$(BIN)/python -m tests.labelstudio_server --template
	touch $(LS_STAMP)

system-deps:
	@if ! dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then \
		echo "installing Debian packages: $(APT_PACKAGES)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

lint: install
	$(BIN)/ruff check labelaudit components views tests bench scripts app.py serve.py
	$(BIN)/ruff format --check labelaudit components views tests bench scripts app.py serve.py
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install labelstudio-env
	$(BIN)/python -m bench.run_all

clean:
	rm -rf .labelaudit .pytest_cache
