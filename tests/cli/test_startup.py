"""`cstrack --help` starts fast: building the parser and every `--help` import no heavy module,
and the defaults and choices they show are the defining modules' own values: the settings'
modules (`cstrack.config`, `cstrack.training.config`, `cstrack.data.synth.scene`) import no torch.
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys

import pytest

from cstrack.cli.main import build_parser

HEAVY = ("torch", "cv2", "trackeval", "onnxruntime", "onnx", "scipy", "ray")
# Options whose defaults come from SynthConfig and TrainConfig fields of the same name.
SYNTH_FIELDS = (
    "frames", "width", "height", "fps", "people", "occlusion", "blur", "drop_frames", "fake_background",
)  # fmt: skip
TRAIN_FIELDS = (
    "epochs", "batch", "img_size", "stage", "device", "workers", "lr", "momentum", "weight_decay",
    "schedule", "warmup_epochs", "id_weight", "seed", "output", "val_every",
)  # fmt: skip

# Runs in a fresh interpreter: `--help` of the command and of every (nested) subcommand, then
# reports the commands it printed help for and the heavy top-level modules that got imported.
PROBE = """
import argparse, contextlib, io, json, sys
from cstrack.cli.main import build_parser

def commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                yield (*prefix, name)
                yield from commands(subparser, (*prefix, name))

done = []
for command in [(), *commands(build_parser())]:
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):
        build_parser().parse_args([*command, "--help"])
    done.append([" ".join(command), "usage: cstrack" in out.getvalue()])
heavy = sorted({name.partition(".")[0] for name in sys.modules} & set(sys.argv[1:]))
print(json.dumps({"help": done, "heavy": heavy}))
"""


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action.choices


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions}


def test_every_help_imports_no_heavy_module() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE, *HEAVY], check=True, capture_output=True, text=True)
    report = json.loads(result.stdout)
    printed = dict(report["help"])
    assert {"", "eval", "track", "train", "synth", "data", "data from-mot", "convert", "export"} <= set(
        printed
    )
    assert all(printed.values()), printed
    assert report["heavy"] == []


def test_help_values_are_the_defining_modules_values() -> None:
    from cstrack.config import RuntimeConfig
    from cstrack.data.synth.scene import SynthConfig
    from cstrack.pipeline.end_to_end import Tracker
    from cstrack.pipeline.tracker_config import RULES, TrackerConfig
    from cstrack.training.config import DEVICES, SCHEDULES, STAGES, TrainConfig

    commands = subparsers(build_parser())
    track = options(commands["track"])
    assert track["model"].default == inspect.signature(Tracker).parameters["model"].default
    runtime = RuntimeConfig()
    assert (track["backend"].default, track["device"].default) == (runtime.backend, runtime.device)
    for name in RULES:  # shown, not set: the file decides unless the option is given
        default = TrackerConfig().value(name)
        shown = ("on" if default else "off") if isinstance(default, bool) or default is None else default
        assert track[name].default is None and (name == "img_size" or f"default: {shown}" in track[name].help)

    synth, synth_defaults = options(commands["synth"]), SynthConfig()
    for name in SYNTH_FIELDS:
        assert synth[name].default == getattr(synth_defaults, name), name

    train, train_defaults = options(commands["train"]), TrainConfig(model="", data="")
    for name in TRAIN_FIELDS:
        assert train[name].default == getattr(train_defaults, name), name
    assert train["scale"].default == train_defaults.augment.scale
    assert train["translate"].default == train_defaults.augment.translate
    assert (train["stage"].choices, train["device"].choices) == (STAGES, DEVICES)
    assert train["schedule"].choices == SCHEDULES


@pytest.mark.parametrize(
    "module", ["cstrack.config", "cstrack.training.config", "cstrack.data.synth.scene", "cstrack.cli.main"]
)
def test_the_settings_import_no_heavy_module(module: str) -> None:
    probe = f"import json, sys, {module}; print(json.dumps([m.partition('.')[0] for m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True)
    loaded = set(json.loads(result.stdout))
    assert not set(loaded) & set(HEAVY)
    if module == "cstrack.config":
        assert "numpy" not in loaded and "yaml" not in loaded  # the ground floor: the standard library
