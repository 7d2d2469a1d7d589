PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

DEMO_DATA ?= ../shared/data/PETS09-S2L1
DEMO_OUT := runs/demo

.PHONY: test setup demo docs-demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, from PyTorch's index of CPU builds: from PyPI, `pip install torch` on Linux is the
# CUDA build (GBs of nvidia-* packages). Where that index cannot be reached, the plain pin (a
# machine whose pip is set up for CPU wheels gets the CPU build so). The video extra makes
# `--save-video` write H.264, which browsers play.
TORCH := torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --timeout 30 --retries 1 --index-url $(TORCH_INDEX) "$(TORCH)" \
		|| $(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test,video]"
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

# The clip on the documentation site's home page, committed as docs/assets/demo.mp4 (about 0.5 MB):
# the bundled model on PETS09-S2L1's held-out frames 601-656, with a counting line.
docs-demo: $(STAMP)
	$(BIN)/cstrack track "$(DEMO_DATA)" --frames 601-656 --save-video --count-line 330,170,330,540 \
		--output runs/docs-demo --quiet
	cp runs/docs-demo/PETS09-S2L1.mp4 docs/assets/demo.mp4

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
