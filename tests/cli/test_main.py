"""The `cstrack` command itself: commands in the order of use, errors with the right usage."""

from __future__ import annotations

import pytest

from cstrack.cli.main import SUBCOMMANDS, build_parser, main


def test_commands_are_listed_in_the_order_of_use():
    assert SUBCOMMANDS[:3] == ("track", "eval", "tune")
    listing = build_parser().format_help()
    assert listing.index("    track ") < listing.index("    eval ") < listing.index("    train ")


@pytest.mark.parametrize(
    "argv", [["track", "v.mp4", "--bogus"], ["eval", "--gt", "g", "--results", "r", "x"]]
)
def test_an_unknown_option_prints_the_subcommand_usage(capsys, argv: list[str]):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert (
        err.startswith(f"usage: cstrack {argv[0]} ")
        and f"cstrack {argv[0]}: error: unrecognized arguments" in err
    )


def test_help_names_metavars_and_defaults_alike():
    track = build_parser()._subparsers._group_actions[0].choices["track"].format_help()  # type: ignore[union-attr]
    assert "SOURCE" in track and "--frames A-B" in track and "--device DEVICE" in track
    assert "(default: 30)" in track and "(default: mot)" in track
    assert "installed here" not in track  # the help is the same wherever it was built
