"""The documentation hooks (docs/hooks/): the CLI reference covers every subcommand of the real
parser, and the model cards carry the figures the model zoo shows. No mkdocs needed: the hooks'
rendering functions are called directly."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from cstrack.cli.main import build_parser

HOOKS = Path(__file__).resolve().parents[1] / "docs" / "hooks"


def load_hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", HOOKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli_reference = load_hook("cli_reference")
settings = load_hook("settings")


def walk(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subparser below `parser`, nested ones too, found independently of the hook."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found += [sub, *walk(sub)]
    return found


def section(reference: str, prog: str) -> str:
    """The text of one command's section: from its heading to the next heading."""
    match = re.search(rf"^#+ `{re.escape(prog)}` \{{ #{prog.replace(' ', '-')} \}}$", reference, re.M)
    assert match, f"no section for {prog}"
    following = re.search(r"^#+ `", reference[match.end() :], re.M)
    return reference[match.start() : match.end() + (following.start() if following else len(reference))]


def test_every_subcommand_is_rendered_with_its_usage_and_every_argument() -> None:
    parser = build_parser()
    reference = cli_reference.render_cli_reference()
    subparsers = walk(parser)
    progs = [sub.prog for sub in subparsers]
    assert {"cstrack track", "cstrack eval", "cstrack train", "cstrack data from-mot"} <= set(progs)
    assert [prog for prog, _, _ in cli_reference.iter_commands(parser)] == progs
    for sub in subparsers:
        text = section(reference, sub.prog)
        usage = sub.format_usage().split()  # the usage words, whatever the line width
        assert " ".join(usage) in " ".join(text.split()), sub.prog
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name in action.choices:
                    assert f"[`{name}`](#{sub.prog.replace(' ', '-')}-{name})" in text
                continue
            for option in action.option_strings or [action.metavar or action.dest]:
                assert f"`{option}" in text or f", {option}" in text, (sub.prog, option)
    top = section(reference, "cstrack")
    for sub in subparsers:
        if sub.prog.count(" ") == 1:
            assert f"(#{sub.prog.replace(' ', '-')})" in top


def test_defaults_choices_and_expanded_help_come_from_argparse() -> None:
    reference = cli_reference.render_cli_reference()
    track = section(reference, "cstrack track")
    assert "| `--backend auto&#124;torch&#124;onnx` | inference backend: auto is onnx " in track
    assert "else torch (default: auto) | `auto` |" in track
    assert "| `--trails N` | trail length in frames, 0: none (default: 30) | `30` |" in track
    assert "| `--save-video` |" in track and "`False`" not in track  # flags have no default shown
    export = section(reference, "cstrack export")
    assert "&lt;stem&gt;.recheck.onnx" in export and "<stem>" not in export  # not swallowed as HTML
    assert "w\\*h" in track  # `*` shown as typed, not as emphasis


def test_a_new_subcommand_appears_without_touching_the_docs() -> None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    added = subparsers.add_parser("frobnicate", help="frobnicate the widgets", description="Frobnicate.")
    added.add_argument(
        "--level", type=int, default=3, metavar="L", choices=[1, 2, 3], help="level %(default)s"
    )
    nested = added.add_subparsers(dest="what", metavar="WHAT").add_parser("deep", help="go deeper")
    nested.add_argument("depth", help="how deep")
    reference = cli_reference.render_cli_reference(parser)
    text = section(reference, "cstrack frobnicate")
    assert "| `--level L` | level 3 (choices: 1, 2, 3) | `3` |" in text
    assert "[`frobnicate`](#cstrack-frobnicate)" in section(reference, "cstrack")
    assert "### `cstrack frobnicate deep` { #cstrack-frobnicate-deep }" in reference
    assert "| `depth` | how deep |  |" in section(reference, "cstrack frobnicate deep")


def test_the_hook_replaces_only_its_marker() -> None:
    page = f"# CLI\n\n{cli_reference.MARKER}\n"
    rendered = cli_reference.on_page_markdown(page, None, None, None)
    assert cli_reference.MARKER not in rendered and "## `cstrack train` { #cstrack-train }" in rendered
    assert cli_reference.on_page_markdown("no marker", None, None, None) == "no marker"


def test_the_settings_table_shows_every_field_of_tracker_yaml_with_its_default() -> None:
    from cstrack.pipeline.tracker_config import RULES, TrackerConfig, flag

    table = settings.on_page_markdown(f"# Tune\n\n{settings.MARKER}\n", None, None, None)
    assert settings.MARKER not in table
    for name, value in TrackerConfig().items():
        (row,) = [line for line in table.splitlines() if line.startswith(f"| `{name}` |")]
        assert f"`{flag(name)}" in row and settings._default(value) in row, name
    assert len([line for line in table.splitlines() if line.startswith("| `")]) == len(RULES)


@pytest.mark.parametrize("name", ["omc_yolox_nano.bytetrack_pets", "omc_mobilenetv2.pets"])
def test_model_cards_carry_the_figures_of_the_model_zoo(name: str, caplog: pytest.LogCaptureFixture) -> None:
    from cstrack.models.pretrained import list_pretrained, model_card

    assert name in list_pretrained()
    model_zoo = load_hook("model_zoo")
    figures = model_zoo.card_figures(model_card(name).read_text(encoding="utf-8"), name)
    assert not caplog.records  # a missing figure is a warning, which fails `mkdocs build --strict`
    assert figures["architecture"].startswith(f"`{name.split('.')[0]}`")
    assert figures["scores_on"] == "PETS09-S2L1 frames 601-795"
    assert all(re.fullmatch(r"\d+\.\d", figures[key]) for key in ("HOTA", "MOTA", "IDF1"))
    assert "ms/frame" in figures["speed"]


def test_model_zoo_says_which_weights_are_in_the_wheel() -> None:
    """Superseded models are downloaded on first use (tests: from weights/, tests/conftest.py)."""
    from cstrack.models.pretrained import BUNDLED, RELEASED, list_pretrained

    table, cards = load_hook("model_zoo").render_bundled()
    assert len(cards) == len(list_pretrained()) and set(RELEASED) - set(BUNDLED)
    for name in list_pretrained():
        (row,) = (line for line in table.splitlines() if line.startswith(f"| [`{name}`]"))
        assert ("| in the wheel |" if name in BUNDLED else "| downloaded |") in row


def test_model_zoo_reads_the_released_speed_from_the_checkout() -> None:
    model_zoo = load_hook("model_zoo")
    repo = Path(__file__).resolve().parents[1]
    released = model_zoo.released_speed(repo)
    assert released is not None and released[("omc_l", "recheck")][(1088, 608)] > 0
    assert "| `omc_l` | base + re-check (20 templates) |" in model_zoo.render_released(repo)
    assert model_zoo.released_speed(repo / "nowhere") is None


def test_the_cli_reference_is_the_same_wherever_it_is_built() -> None:
    """Nothing of the build machine (which extras it has) goes into the reference."""
    assert "installed here" not in cli_reference.render_cli_reference()
