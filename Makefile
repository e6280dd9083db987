# storylab: `make run` runs the main job, `make test` the whole test suite.
# Both create .venv on first use; later calls skip the install unless a requirements
# or project file changed (a stamp file records the last install).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SWEEP ?= params/sweeps/hmm_states.yaml
JOBS ?= 2

.PHONY: run test lab sweep report bench install clean-outputs

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: an unpinned resolve would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet "$$(grep '^torch==' requirements.txt)"
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m storylab pipeline params/pipeline.yaml

test: $(STAMP)
	$(PY) -m pytest -q

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

sweep: $(STAMP)
	$(PY) -m storylab sweep $(SWEEP) --jobs $(JOBS)

report: $(STAMP)
	$(PY) -m storylab report

bench: $(STAMP)
	$(PY) benchmarks/hmm_em.py
	$(PY) benchmarks/train_throughput.py

clean-outputs:
	rm -rf outputs/runs outputs/cache outputs/sweeps outputs/assets outputs/index.html outputs/interactive
