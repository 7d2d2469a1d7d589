"""mkdocs hook: the table of the tracker's settings, rendered at build time from `cstrack.config`.

A page holding the line `<!-- cstrack:settings -->` gets, in its place, one table per config that
`tracker.yaml` holds (`DetectorConfig`, `AssociationConfig`, `RecheckConfig`): each field with
its command-line option, its default and what it does, read from the field itself, so the docs
show the values the code uses.

`render_settings()` does the work without mkdocs (tests call it directly).
"""

from __future__ import annotations

import dataclasses

MARKER = "<!-- cstrack:settings -->"


def _default(value: object) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def render_settings() -> str:
    """A Markdown table per section of `tracker.yaml`: field, option, default, what it changes."""
    from cstrack.config import TRACKER_SECTIONS, option

    parts = []
    for kind in TRACKER_SECTIONS.values():
        rows = [
            f"`{kind.__name__}`: {' '.join((kind.__doc__ or '').split(chr(10) * 2)[0].split())}",
            "",
            "| field (YAML) | option | default | what it changes |",
            "|---|---|---|---|",
        ]
        for item in dataclasses.fields(kind):
            flag = option(kind, item.name)
            if item.metadata["rule"].base == "bool":
                flag = f"{flag} / --no-{flag[2:]}"
            text = item.metadata["help"].replace("|", "\\|")
            rows.append(f"| `{item.name}` | `{flag}` | {_default(item.default)} | {text} |")
        parts.append("\n".join(rows))
    return "\n\n".join(parts)


def on_page_markdown(markdown: str, page: object, config: dict, files: object, **kwargs: object) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, render_settings())
    return markdown
