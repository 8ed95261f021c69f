# Two entry points for a newcomer: `make demo` (end-to-end on the embedded default corpus, no network)
# and `make test` (the whole suite). Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	# torch first, pinned: the CPU build installs in seconds; an unpinned torch pulls GBs of CUDA wheels.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/charlstm data code --name stdlib --force
	$(BIN)/charlstm train stdlib --run demo --time-budget 3m --force
	$(BIN)/charlstm sample demo --prime "def " --length 400 --temperature 0.8 --seed 1
	$(BIN)/charlstm trace demo --split val --limit 3000 --html out/demo-trace.html -o out/demo-trace.npz

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/charlstm bench --quick

clean:
	rm -rf $(VENV) out
