"""The one result type of every check and gate in the domain, in plain Python (no Dagster).

A check returns a `CheckResult`: whether it passed, a one-line description, its severity and
metadata of plain values. `music_assets.defs.check_results` turns these into Dagster check
results, for unpartitioned and partitioned assets alike, and is the one place where metadata
values become Dagster metadata: plain values (str, int, float, bool, dict, list, None) as Dagster
reads them, and the three types below as what they say they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warn"]
SEVERITIES: tuple[Severity, ...] = ("error", "warn")


class Markdown(str):
    """A metadata text shown as Markdown (a table of examples, say)."""

    __slots__ = ()


class Preformatted(str):
    """A metadata text of several lines shown verbatim, in a fixed-width block (a listing of problems)."""

    __slots__ = ()


@dataclass(frozen=True)
class Table:
    """A metadata table: `columns` are (name, type) pairs, type one of string, int, float, bool;
    each row is a mapping from column name to value (a missing name is an empty cell)."""

    columns: tuple[tuple[str, str], ...]
    rows: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple((str(n), str(t)) for n, t in self.columns))
        object.__setattr__(self, "rows", tuple(self.rows))


@dataclass(frozen=True)
class CheckResult:
    """The result of one check.

    `name` is the check's name; it may be left out where the caller names the check (a check
    function wired as one named Dagster check, or a domain check reused under several names).
    `severity` is "error" (the default) or "warn"; whether a failure blocks downstream work is
    the check's declaration, not its result. `metadata` holds plain values, `Markdown`,
    `Preformatted` and `Table` (and, in the Dagster wiring only, Dagster metadata values, which
    pass through as they are).
    """

    passed: bool
    description: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    severity: Severity = "error"

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"check severity {self.severity!r}: expected one of {', '.join(SEVERITIES)}")
        object.__setattr__(self, "passed", bool(self.passed))
        object.__setattr__(self, "metadata", dict(self.metadata))


def listing(lines: Sequence[str]) -> str:
    """`lines` one a line; shown verbatim in a fixed-width block when that makes several lines."""
    text = "\n".join(lines)
    return Preformatted(text) if "\n" in text else text
