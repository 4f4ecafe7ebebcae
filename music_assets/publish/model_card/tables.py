"""The card's markdown tables: the metrics row of one evaluation, and reading the metrics table back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from music_assets.publish.model_card.evaluations import ModelCardError


def _pct(v: float) -> str:
    return f"{100 * v:.1f} %"


def _with_real(v: float, real: float, fmt: str) -> str:
    return f"{format(v, fmt)} ({format(real, fmt)})"


# (header, cell of one evaluation). `parse_metrics_table` reads the cells back by header.
METRIC_COLUMNS: tuple[tuple[str, Callable[[dict[str, Any]], str]], ...] = (
    ("takes", lambda e: str(e["takes"])),
    ("conditioning accuracy", lambda e: f"{e['conditioning_accuracy']:.3f}"),
    ("timing SD ms (real)", lambda e: _with_real(e["timing_sd_ms"], e["real_timing_sd_ms"], ".1f")),
    ("velocity CV (real)", lambda e: _with_real(e["velocity_cv"], e["real_velocity_cv"], ".3f")),
    ("Fréchet distance (scale)", lambda e: _with_real(e["frechet_distance"], e["frechet_scale"], ".3g")),
    ("degenerate", lambda e: _pct(e["degenerate_rate"])),
    ("distinct", lambda e: _pct(e["distinct_rate"])),
    ("length within ±25 %", lambda e: _pct(e["length_within_25pct"])),
    ("grammar", lambda e: f"{e['grammar_score']:.3f}"),
    ("gates passed", lambda e: f"{sum(g['passed'] for g in e['gates'].values())}/{len(e['gates'])}"),
)
METRICS_HEADER = ("tier", "precision", *(h for h, _ in METRIC_COLUMNS))


def metric_cells(ev: Mapping[str, Any]) -> dict[str, str]:
    """The metrics table's cells for one evaluation, by column header."""
    return {h: cell(ev) for h, cell in METRIC_COLUMNS}


def _split_row(line: str) -> list[str]:
    inner = line.strip()[1:-1]
    cells, cur, i = [], "", 0
    while i < len(inner):
        if inner[i] == "\\" and i + 1 < len(inner) and inner[i + 1] == "|":
            cur += "|"
            i += 2
            continue
        if inner[i] == "|":
            cells.append(cur.strip())
            cur = ""
        else:
            cur += inner[i]
        i += 1
    cells.append(cur.strip())
    return cells


def parse_metrics_table(card: str) -> dict[tuple[str, str], dict[str, str]]:
    """The metrics table of a card, {(tier, precision): {header: cell}}; ModelCardError when absent."""
    lines = card.splitlines()
    want = list(METRICS_HEADER)
    for i, line in enumerate(lines):
        if line.startswith("|") and _split_row(line) == want:
            rows = {}
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                cells = _split_row(row)
                if len(cells) != len(want):
                    raise ModelCardError(f"metrics table row has {len(cells)} cells, expected {len(want)}: {row}")
                rows[(cells[0], cells[1])] = dict(zip(want[2:], cells[2:], strict=True))
            return rows
    raise ModelCardError("the card has no metrics table (header: " + " | ".join(want) + ")")
