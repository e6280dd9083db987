# storylab: `make run` runs the main job, `make test` the whole test suite.
# Both create .venv on first use; later calls skip the install unless a requirements
# or project file changed (a stamp file records the last install). `make test` also
# brings what its browser tests need (Debian's chromium), so CI is nothing but `make test`.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SWEEP ?= params/sweeps/hmm_states.yaml
JOBS ?= 2
CHROMIUM ?= /usr/bin/chromium
# A package index for torch, e.g. https://download.pytorch.org/whl/cpu for a CPU-only
# build on an ordinary Linux machine (where the plain pin resolves to a CUDA build).
TORCH_INDEX ?=

.PHONY: run test lab sweep report board bench install browser clean-outputs mutate

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	    echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu install python3-venv (sudo apt-get install -y python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned resolve would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$$(grep '^torch==' requirements.txt)"
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m storylab pipeline params/pipeline.yaml

test: $(STAMP) browser
	CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q

# The browser tests drive Debian's chromium, never a browser downloaded at run time:
# installed here when missing and this user may install packages, else one line saying how.
browser:
	@test -x $(CHROMIUM) || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" -eq 0 ]; then SUDO=""; \
	  elif command -v apt-get >/dev/null && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo"; \
	  else echo "error: the browser tests need $(CHROMIUM); install it with: sudo apt-get install -y chromium"; exit 1; fi; \
	  echo "installing Debian's chromium for the browser tests"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null \
	    && test -x $(CHROMIUM) || { echo "error: installing chromium failed; run: sudo apt-get install -y chromium"; exit 1; }; }

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $$(test "$$(id -u)" = 0 && echo --allow-root)

sweep: $(STAMP)
	$(PY) -m storylab sweep $(SWEEP) --jobs $(JOBS)

board: $(STAMP)
	$(PY) -m storylab board

report: $(STAMP)
	$(PY) -m storylab report

bench: $(STAMP)
	$(PY) benchmarks/hmm_em.py
	$(PY) benchmarks/train_throughput.py

# Mutation testing of the core numerical modules (mutmut, configured in pyproject.toml):
# not part of `make test`, it takes hours on 2 cores. mutmut works in mutants/ (git-ignored)
# and keeps its verdicts there, so a second call runs only what is new or changed.
# MUTANTS picks some: make mutate MUTANTS='storylab.metrics.*'. Ends with the per-module
# table (tests/mutation_summary.py); `.venv/bin/mutmut show NAME` prints one mutant's diff.
MUTANTS ?=
MUTATE_STAMP := $(VENV)/.installed-mutate

$(MUTATE_STAMP): requirements-mutate.txt $(STAMP)
	$(PY) -m pip install --quiet -r requirements-mutate.txt
	touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	@test -L src || { test ! -e src && ln -s lib src; } || { echo "error: make mutate needs src -> lib (mutmut names modules after src/), but src exists"; exit 1; }
	nice -n 19 $(VENV)/bin/mutmut run --max-children $(JOBS) $(MUTANTS)
	$(PY) tests/mutation_summary.py

clean-outputs:
	rm -rf outputs/runs outputs/cache outputs/sweeps outputs/assets outputs/index.html outputs/interactive outputs/checkpoints
