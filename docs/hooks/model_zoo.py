"""mkdocs hook: the model zoo, rendered at build time from the registry and the model cards.

A page holding the line `<!-- cstrack:model-zoo -->` gets, in its place:
- the trained models (`cstrack.models.list_pretrained()`): parameters, file size, whether the
  file is in the wheel or downloaded on first use, input size, and the key figures of each model
  card (the first row of its Scores table, its speed);
- every registered variant (`cstrack.models.list_models()` / `VARIANTS`) with its configuration
  and parameter count (each model is built on the CPU: a few seconds in all);
- the measured CPU speed of the authors' released networks, read from the `RELEASED` table of
  `benchmarks/model_speed.py` when the checkout has that file (nothing outside it is read);
- the model cards themselves, headings moved down two levels.

A card that no longer has the figures this page shows is logged as a warning, which fails
`mkdocs build --strict`. `render_model_zoo(repo_root)` does the work without mkdocs.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path

MARKER = "<!-- cstrack:model-zoo -->"
SPEED_FILE = Path("benchmarks") / "model_speed.py"
logger = logging.getLogger("mkdocs.hooks.model_zoo")

_BACKBONES = {"yolov5": "YOLOv5 CSPDarknet", "mobilenetv2": "MobileNetV2", "yolox": "YOLOX-Nano"}
_BLOCKS = {"csp": "BottleneckCSP", "c3": "C3"}
_ACTS = {"leaky": "LeakyReLU", "silu": "SiLU"}
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})(\s.*)$")


def _anchor(name: str) -> str:
    return "card-" + re.sub(r"[^a-z0-9_]+", "-", name.lower())


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _is_rule(line: str) -> bool:
    return bool(re.fullmatch(r"\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*\|?", line.strip()))


def _tables(lines: list[str]) -> list[tuple[int, list[list[str]]]]:
    """(index of the header line, rows of cells) of each pipe table outside code fences."""
    found, fenced, i = [], False, 0
    while i < len(lines):
        if _FENCE.match(lines[i]):
            fenced = not fenced
        elif (
            not fenced and lines[i].lstrip().startswith("|") and i + 1 < len(lines) and _is_rule(lines[i + 1])
        ):
            start, rows = i, [_cells(lines[i])]
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            found.append((start, rows))
            continue
        i += 1
    return found


def _section(lines: list[str], title: str) -> list[str]:
    """The lines of the `## title` section (up to the next heading of level 2 or above)."""
    out, inside, fenced = [], False, False
    for line in lines:
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading and len(heading.group(1)) <= 2:
            if inside:
                break
            inside = heading.group(2).strip().lower() == title.lower()
            continue
        if inside:
            out.append(line)
    return out


def card_figures(card: str, name: str) -> dict[str, str]:
    """Key figures of a model card: its summary table's rows (`architecture`, `parameters`,
    `input`, `speed`, ...) and the first row of its Scores table (`scores_on`, `scores_row`,
    `HOTA`, `MOTA`, `IDF1`). Missing ones are logged as warnings."""
    lines = card.splitlines()
    figures: dict[str, str] = {}
    tables = _tables(lines)
    if tables and tables[0][1][0][:1] == [""]:  # the `| | |` summary table
        figures.update({row[0]: row[1] for row in tables[0][1][1:] if len(row) >= 2})
    scores = _section(lines, "Scores")
    score_tables = _tables(scores)
    if score_tables:
        start, rows = score_tables[0]
        header, first = rows[0], rows[1] if len(rows) > 1 else []
        for column in ("HOTA", "MOTA", "IDF1"):
            if column in header and header.index(column) < len(first):
                figures[column] = first[header.index(column)]
        figures["scores_row"] = first[0] if first else ""
        paragraph = []
        for line in reversed(scores[:start]):
            if not line.strip():
                if paragraph:
                    break
                continue
            paragraph.insert(0, line.strip())
        # "PETS09-S2L1 frames 601-795 (held out), MOT15 rules, ..." -> "PETS09-S2L1 frames 601-795"
        figures["scores_on"] = re.split(r" \(|,|:", " ".join(paragraph), maxsplit=1)[0].strip()
    for key in ("architecture", "input", "speed", "HOTA", "MOTA", "IDF1", "scores_on"):
        if not figures.get(key):
            logger.warning("model zoo: the model card of %s has no %r figure", name, key)
    return figures


def demote(card: str, levels: int, anchor: str) -> str:
    """The card with its headings `levels` deeper (code fences untouched), the first one anchored."""
    out, fenced, anchored = [], False, False
    for line in card.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)
        if heading:
            line = "#" * min(len(heading.group(1)) + levels, 6) + heading.group(2)
            if not anchored:
                line += f" {{ #{anchor} }}"
                anchored = True
        out.append(line)
    return "\n".join(out)


def released_speed(repo_root: Path) -> dict[tuple[str, str], dict[tuple[int, int], int]] | None:
    """The `RELEASED` literal of benchmarks/model_speed.py (read, not imported), or None."""
    path = repo_root / SPEED_FILE
    if not path.is_file():
        return None
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "RELEASED" for t in targets):
            return ast.literal_eval(node.value)  # type: ignore[union-attr]
    return None


def _count(model: object) -> int:
    from cstrack.models import count_parameters

    return count_parameters(model)  # type: ignore[arg-type]


def render_bundled() -> tuple[str, list[str]]:
    from cstrack.config import DEFAULT_MODEL
    from cstrack.models import create_model, list_pretrained
    from cstrack.models.pretrained import (
        BUNDLED,
        WEIGHTS_URL_ENV,
        model_card,
        pretrained_weights,
        trained_img_size,
    )

    lines = [
        "## Trained models",
        "",
        "Give the name to `cstrack track --model`, `cstrack export --model`, `cstrack train "
        "--weights`, `Tracker(...)` or `create_model(...)`. The current ones ship inside the wheel; "
        "superseded ones are release assets, downloaded once on first use into the cache folder "
        f"and checked by SHA-256 (`${WEIGHTS_URL_ENV}` names a mirror). Scores and speed are the "
        "model cards' own figures.",
        "",
        "| model | architecture | parameters | file | weights | input (W x H) | HOTA / MOTA / IDF1 | on | speed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    cards = []
    for name in list_pretrained():
        path = pretrained_weights(name)
        card = model_card(name).read_text(encoding="utf-8")
        figures = card_figures(card, name)
        size = trained_img_size(path)
        default = " (default)" if name == DEFAULT_MODEL else ""
        scores = " / ".join(figures.get(k, "?") for k in ("HOTA", "MOTA", "IDF1"))
        on = figures.get("scores_on", "")
        if figures.get("scores_row"):
            on += f", {figures['scores_row']}"
        lines.append(
            f"| [`{name}`](#{_anchor(name)}){default} | `{name.split('.')[0]}` "
            f"| {_count(create_model(name)):,} | {path.stat().st_size / 1e6:.1f} MB "
            f"| {'in the wheel' if name in BUNDLED else 'downloaded'} "
            f"| {'' if size is None else f'{size[0]} x {size[1]}'} | {scores} | {on} "
            f"| {figures.get('speed', '')} |"
        )
        cards.append(demote(card, 2, _anchor(name)))
    lines.append("")
    return "\n".join(lines), cards


def render_variants() -> str:
    from cstrack.models import VARIANTS, create_model, list_models, list_pretrained

    trained = {name.split(".")[0] for name in list_pretrained()}
    lines = [
        "## Registered variants",
        "",
        "`create_model(NAME)` builds one with random weights (`cstrack train --model NAME`); "
        "parameter counts are of the model as built (re-check network included where it has one).",
        "",
        "| variant | backbone | blocks / activation | depth x width | BAR | DenseMask | re-check | parameters | trained models |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    yes = {True: "yes", False: "no"}
    for name in list_models():
        cfg = VARIANTS[name]
        blocks = f"{_BLOCKS.get(cfg.block, cfg.block)} / {_ACTS.get(cfg.act, cfg.act)}"
        backbone = _BACKBONES.get(cfg.backbone, cfg.backbone)
        bar = yes[cfg.bar]
        if cfg.backbone == "yolox":  # YOLOX's own head and decode; BAR only for re-check boxes
            blocks, bar = "YOLOX-Nano's", "re-check boxes" if cfg.bar and cfg.recheck else "no"
        elif cfg.backbone != "yolov5":
            blocks = f"PAN {blocks}"
        bundled = ", ".join(f"`{p}`" for p in list_pretrained() if p.split(".")[0] == name)
        lines.append(
            f"| `{name}` | {backbone} | {blocks} | {cfg.depth} x {cfg.width} | {bar} "
            f"| {yes[cfg.dense_mask]} | {yes[cfg.recheck]} | {_count(create_model(name)):,} "
            f"| {bundled if name in trained else ''} |"
        )
    lines.append("")
    return "\n".join(lines)


def render_released(repo_root: Path) -> str:
    table = released_speed(repo_root)
    if not table:
        return ""
    sizes = sorted({size for row in table.values() for size in row}, reverse=True)
    lines = [
        "## The released networks on the CPU",
        "",
        "Forward time of the authors' released implementation (torch CPU, 2 threads, batch 1, "
        "median ms per frame; letterboxing, NMS and association not included), as "
        "`benchmarks/model_speed.py` prints it beside ours (`python benchmarks/model_speed.py`):",
        "",
        "| network | part | " + " | ".join(f"{w} x {h}" for w, h in sizes) + " |",
        "|---|---|" + "---|" * len(sizes),
    ]
    for (name, part), row in table.items():
        cells = " | ".join(str(row.get(size, "")) for size in sizes)
        lines.append(f"| `{name}` | {part.replace('recheck', 'base + re-check (20 templates)')} | {cells} |")
    lines.append("")
    return "\n".join(lines)


def render_model_zoo(repo_root: Path) -> str:
    import os

    from cstrack.models.pretrained import WEIGHTS_URL_ENV

    # The superseded weights are in the checkout's weights/ folder: the site builds offline.
    os.environ.setdefault(WEIGHTS_URL_ENV, (repo_root / "weights").as_uri())
    bundled, cards = render_bundled()
    parts = [bundled, render_variants(), render_released(repo_root), "## Model cards", ""]
    return "\n".join(p for p in parts if p) + "\n" + "\n\n".join(cards) + "\n"


def on_page_markdown(markdown: str, page: object, config: dict, files: object, **kwargs: object) -> str:
    if MARKER in markdown:
        repo_root = Path(config["config_file_path"]).resolve().parent
        return markdown.replace(MARKER, render_model_zoo(repo_root))
    return markdown
