"""The domain's one check-result type: plain Python, validated, and what a check says stays said."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from music_assets.checks import CheckResult, Markdown, Preformatted, Table, listing


def test_a_result_defaults_to_an_unnamed_error_and_keeps_what_it_was_given() -> None:
    r = CheckResult(False, "2 files clipped", {"failing": 2})
    assert (r.name, r.passed, r.description, r.severity, r.metadata) == (
        None,
        False,
        "2 files clipped",
        "error",
        {"failing": 2},
    )
    named = CheckResult(name="not_clipped", passed=True, severity="warn")
    assert (named.name, named.description, named.metadata, named.severity) == ("not_clipped", None, {}, "warn")


def test_an_unknown_severity_is_refused() -> None:
    with pytest.raises(ValueError, match="'fatal'"):
        CheckResult(False, severity="fatal")  # type: ignore[arg-type]


def test_a_result_cannot_be_changed_once_made() -> None:
    meta = {"failing": 0}
    r = CheckResult(np.bool_(True), "ok", meta)
    assert r.passed is True  # a numpy bool from a comparison becomes a bool
    meta["failing"] = 3  # the caller's dict, changed afterwards
    assert r.metadata == {"failing": 0}
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.passed = False  # type: ignore[misc]
    assert dataclasses.replace(r, name="x").name == "x" and r.name is None


def test_metadata_kinds_are_plain_values_that_say_how_to_show_them() -> None:
    assert Markdown("| a |") == "| a |" and isinstance(Markdown("x"), str)
    assert listing(["one"]) == "one" and not isinstance(listing(["one"]), Preformatted)
    several = listing(["one", "two"])
    assert several == "one\ntwo" and isinstance(several, Preformatted)
    t = Table([["file", "string"], ("n", "int")], [{"file": "a.flac", "n": 1}])
    assert t.columns == (("file", "string"), ("n", "int")) and t.rows == ({"file": "a.flac", "n": 1},)


def test_the_type_knows_nothing_of_dagster() -> None:
    code = "import sys, music_assets.checks; sys.exit('dagster' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
