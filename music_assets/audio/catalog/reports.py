"""The markdown summaries of a catalog shown in the UI: formats, worst files, licences."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def _md_cell(value: Any) -> str:
    if value is None or value != value:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Counts for the UI: files, per status, total hours of readable audio."""
    by_status = {s: sum(1 for r in rows if r["status"] == s) for s in ("ok", "error", "skipped")}
    hours = sum(r["duration_sec"] or 0.0 for r in rows if r["status"] == "ok") / 3600.0
    return {"files": len(rows), **by_status, "total_hours": hours}


def formats_markdown(rows: Sequence[dict[str, Any]]) -> str:
    formats = sorted({r["format"] for r in rows})
    table = []
    for f in formats:
        of = [r for r in rows if r["format"] == f]
        ok = [r for r in of if r["status"] == "ok"]
        table.append(
            (
                f,
                len(of),
                len(ok),
                sum(r["status"] == "error" for r in of),
                sum(r["status"] == "skipped" for r in of),
                round(sum(r["duration_sec"] for r in ok) / 3600, 3),
            )
        )
    return markdown_table(("format", "files", "ok", "errors", "skipped", "hours"), table)


def worst_files_markdown(rows: Sequence[dict[str, Any]], limit: int = 10) -> str:
    """Errors first, then skipped rows, then readable files by clipping, then silence."""
    rank = {"error": 0, "skipped": 1, "ok": 2}

    def key(r: dict[str, Any]) -> tuple:
        return (rank[r["status"]], -(r["clipped_ratio"] or 0.0), -(r["silence_ratio"] or 0.0), r["rel_path"])

    worst = sorted(rows, key=key)[:limit]
    return markdown_table(
        ("file", "status", "problem", "duration s", "clipped", "silence", "LUFS"),
        [
            (
                r["rel_path"],
                r["status"],
                r["error"],
                r["duration_sec"],
                r["clipped_ratio"],
                r["silence_ratio"],
                r["loudness_lufs"],
            )
            for r in worst
        ],
    )


def licenses_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Files and readable hours per license, and where the provenance came from."""
    table = []
    for lic in sorted({r["license"] or "unknown" for r in rows}):
        of = [r for r in rows if (r["license"] or "unknown") == lic]
        ok = [r for r in of if r["status"] == "ok"]
        sources = ", ".join(sorted({r["provenance_source"] or "none" for r in of}))
        table.append((lic, len(of), len(ok), round(sum(r["duration_sec"] for r in ok) / 3600, 3), sources))
    return markdown_table(("license", "files", "ok", "hours", "from"), table)
