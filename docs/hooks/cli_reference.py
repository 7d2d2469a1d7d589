"""mkdocs hook: the CLI reference, rendered at build time from `cstrack.cli.main.build_parser()`.

A page holding the line `<!-- cstrack:cli-reference -->` gets, in its place, every subcommand
of the real parser (nested ones such as `cstrack data from-mot` too, found by walking the
subparsers, so a new subcommand appears without touching the docs): its usage and description
as argparse formats them, and a table of its arguments with argparse's invocation (metavars,
`{choice,...}`), help text (`%(default)s` expanded), default and choices.

`render_cli_reference()` does the work without mkdocs (tests call it directly).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

MARKER = "<!-- cstrack:cli-reference -->"
# Usage lines are wrapped by argparse at this width, whatever terminal builds the docs.
WIDTH = 88
# Actions whose default is implied by the flag itself (or meaningless) get no default column entry.
_NO_DEFAULT = (
    argparse._StoreTrueAction,
    argparse._StoreFalseAction,
    argparse._StoreConstAction,
    argparse._HelpAction,
    argparse._VersionAction,
    argparse._CountAction,
)
_CODE_SPAN = re.compile(r"(`[^`]*`)")
# Markdown-active characters outside code spans: shown as typed (help texts are plain text).
_ESCAPES = {
    "\\": "\\\\",
    "*": "\\*",
    "_": "\\_",
    "[": "\\[",
    "]": "\\]",
    "<": "&lt;",
    ">": "&gt;",
    "|": "\\|",
    "#": "\\#",
    "{": "\\{",
    "}": "\\}",
}


def _escape(text: str) -> str:
    """Plain text as Markdown: code spans (`...`) kept, everything else shown literally."""
    parts = _CODE_SPAN.split(text)
    for i in range(0, len(parts), 2):  # even indices: outside code spans
        parts[i] = "".join(_ESCAPES.get(c, c) for c in parts[i])
    return "".join(parts)


def _code(text: str) -> str:
    """A code span for `text` (argparse invocations, defaults), safe inside a table cell."""
    fence = "``" if "`" in text else "`"
    return f"{fence}{text.replace('|', '&#124;')}{fence}"


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    return parser.formatter_class(prog=parser.prog, width=WIDTH)


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, subparser) of each subcommand of `parser`, in registration order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) in seen:  # an alias of a subcommand already listed
                    continue
                seen.add(id(sub))
                yield name, helps.get(name, ""), sub


def iter_commands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(full command, one-line help, parser) of every subcommand, depth first, nested ones too."""
    for _name, help_text, sub in _subparsers(parser):
        yield sub.prog, help_text, sub
        yield from iter_commands(sub)


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = _formatter(parser)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _default(action: argparse.Action) -> str:
    if isinstance(action, _NO_DEFAULT) or action.required:
        return ""
    value = action.default
    if value is None or value == argparse.SUPPRESS:
        return ""
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    return _code(str(value))


def _argument_rows(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = _formatter(parser)
    invocation = formatter._format_action_invocation(action)
    help_text = formatter._expand_help(action) if action.help else ""
    if action.choices is not None and action.metavar is not None:
        # argparse shows the choices in the invocation only when no metavar hides them.
        help_text += f" (choices: {', '.join(str(c) for c in action.choices)})"
    help_cell = _escape(" ".join(help_text.split())).replace("\n", " ")
    return f"| {_code(invocation)} | {help_cell} | {_default(action)} |"


def render_command(prog: str, help_text: str, parser: argparse.ArgumentParser, level: int = 2) -> str:
    """One command's section: heading, usage, description, subcommands and argument tables."""
    anchor = prog.replace(" ", "-")
    lines = [f"{'#' * level} `{prog}` {{ #{anchor} }}", ""]
    if help_text:
        lines += [_escape(help_text[:1].upper() + help_text[1:]) + ".", ""]
    lines += ["```text", _usage(parser), "```", ""]
    if parser.description:
        lines += [_escape(" ".join(parser.description.split())), ""]
    subcommands = list(_subparsers(parser))
    if subcommands:
        lines += ["| subcommand | what it does |", "|---|---|"]
        for name, sub_help, sub in subcommands:
            lines.append(f"| [`{name}`](#{sub.prog.replace(' ', '-')}) | {_escape(sub_help)} |")
        lines.append("")
    for group in parser._action_groups:
        actions = [
            a
            for a in group._group_actions
            if a.help != argparse.SUPPRESS and not isinstance(a, argparse._SubParsersAction)
        ]
        if not actions:
            continue
        lines += [f"**{_escape(group.title or 'arguments')}**", ""]
        lines += ["| argument | description | default |", "|---|---|---|"]
        lines += [_argument_rows(parser, action) for action in actions]
        lines.append("")
    return "\n".join(lines)


def render_cli_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole reference: the top-level command, then every subcommand (nested ones deeper)."""
    if parser is None:
        from cstrack.cli.main import build_parser

        parser = build_parser()
    sections = [render_command(parser.prog, "", parser)]
    for prog, help_text, sub in iter_commands(parser):
        depth = prog.count(" ") - parser.prog.count(" ")  # 1 for `cstrack track`, 2 for nested
        sections.append(render_command(prog, help_text, sub, level=min(2 + depth - 1, 4)))
    return "\n".join(sections)


def on_page_markdown(markdown: str, page: object, config: object, files: object, **kwargs: object) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, render_cli_reference())
    return markdown
