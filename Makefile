PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

DEMO_DATA ?= ../shared/data/PETS09-S2L1
DEMO_OUT := runs/demo

.PHONY: test setup demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first: the CPU wheel pinned here keeps pip from pulling a multi-GB CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The main job: track with the bundled model, writing the rendered video, MOT and JSON results and
# the scores under runs/demo/. PETS09-S2L1's held-out frames 601-795 when the shared data is
# there (the model was trained on frames 1-600), else a freshly rendered synthetic sequence.
demo: $(STAMP)
	@if [ -d "$(DEMO_DATA)" ]; then \
		$(BIN)/cstrack track "$(DEMO_DATA)" --frames 601-795 --output $(DEMO_OUT) --save-video --format mot,json --eval; \
	else \
		echo "$(DEMO_DATA) not found: tracking a synthetic sequence instead"; \
		$(BIN)/cstrack synth $(DEMO_OUT)/data --sequences 1 --frames 150 --seed 7 --width 768 --height 576 --fps 7 --overwrite && \
		$(BIN)/cstrack track $(DEMO_OUT)/data/SYNTH-01 --output $(DEMO_OUT) --save-video --format mot,json --eval; \
	fi

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
