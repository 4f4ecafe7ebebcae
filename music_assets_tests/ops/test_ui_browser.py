"""The web UI in a real browser: Debian's Chromium, driven by Playwright, against `dagster dev`."""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import dagster as dg

from music_assets.audio.signals import music_like, write
from music_assets.paths import REPO_ROOT
from music_assets_tests.ops.processes import BIN, background, free_port, wait_for_http

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a container, without GPU or network: no sandbox, no background fetches.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def make_dev_command(**variables: str) -> list[str]:
    """The `dagster dev` command line of `make dev` (from `make -n`), run with this test's interpreter."""
    out = subprocess.run(
        ["make", "-s", "-n", "dev", *(f"{k}={v}" for k, v in variables.items())],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MAKEFLAGS": ""},
    ).stdout
    line = next(ln for ln in out.splitlines() if " dev -m music_assets.definitions" in ln)
    words = shlex.split(line)
    words = words[words.index(next(w for w in words if w.endswith("/dagster"))) :]  # drop the env prefix
    return [str(BIN / "dagster"), *words[1:]]


def listening_addresses(port: int) -> set[str]:
    """Local IPv4/IPv6 addresses with a socket listening on `port` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(addr)
                # the kernel prints each 32-bit word in host (little-endian) order
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(str(ipaddress.ip_address(words)))
    return found


def test_make_dev_binds_to_localhost_unless_told_otherwise() -> None:
    assert make_dev_command()[-4:] == ["-h", "127.0.0.1", "-p", "3000"]
    assert make_dev_command(HOST="0.0.0.0", PORT="8080")[-4:] == ["-h", "0.0.0.0", "-p", "8080"]


def test_materialize_audio_catalog_from_the_ui(tmp_path: Path, data_dir: Path, dagster_home: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), "make test installs Debian's chromium"
    write(data_dir / "raw_audio" / "masters" / "song.flac", music_like(1.5, seed=7))
    write(data_dir / "raw_audio" / "bounces" / "mix.flac", music_like(1.0, seed=8))
    with dg.DagsterInstance.get() as instance:  # schema before the daemon and webserver race for it
        instance.get_runs()
    # The UI shows a newsletter dialog once per instance; this instance has "seen" it.
    (dagster_home / ".nux").mkdir()
    (dagster_home / ".nux" / "nux.yaml").write_text("seen: 1\n")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "dagster-dev.log"
    cmd = make_dev_command(PORT=str(port))  # exactly what `make dev` runs, with its default host
    assert cmd[cmd.index("-h") + 1] == "127.0.0.1"
    with background(cmd, log, env=os.environ.copy()) as server:
        wait_for_http(f"{base}/server_info", 180, server, log)
        assert listening_addresses(port) == {"127.0.0.1"}  # not reachable from other machines
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(120_000)
            # The first page waits for the code location to load (torch and friends import lazily,
            # but the definitions still take a while on two busy cores).
            expect.set_options(timeout=120_000)

            # The asset graph shows the groups; opening "sources" shows its assets.
            page.goto(f"{base}/asset-groups", wait_until="networkidle")
            page.locator('[data-tooltip="sources"]').first.click()
            expect(page.get_by_text("audio_catalog").first).to_be_visible()
            expect(page.get_by_text("prepared_sources").first).to_be_visible()
            page.screenshot(path=str(shots / "asset-graph.png"))

            # Launch a materialization of audio_catalog from its page.
            page.goto(f"{base}/assets/audio_catalog", wait_until="networkidle")
            page.locator("button", has_text=re.compile(r"^\s*Materialize\s*$")).first.click()
            toast = page.get_by_text(re.compile(r"Launched run [0-9a-f]{8}"))
            expect(toast).to_be_visible()
            run_prefix = re.search(r"Launched run ([0-9a-f]{8})", toast.inner_text()).group(1)

            # The daemon dequeues and launches it; wait for it to succeed.
            deadline = time.monotonic() + 240
            status = None
            while time.monotonic() < deadline:
                with dg.DagsterInstance.get() as instance:
                    runs = [r for r in instance.get_runs() if r.run_id.startswith(run_prefix)]
                status = runs[0].status if runs else None
                if status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
                    break
                time.sleep(2)
            assert status == dg.DagsterRunStatus.SUCCESS, f"run {run_prefix}: {status}\n{log.read_text()[-3000:]}"

            # The run page says so, and the asset's checks tab shows both checks with results.
            page.goto(f"{base}/runs/{runs[0].run_id}", wait_until="networkidle")
            expect(page.get_by_text("Success").first).to_be_visible()
            page.goto(f"{base}/assets/audio_catalog?view=checks", wait_until="networkidle")
            expect(page.get_by_text("unique_source_id").first).to_be_visible()
            expect(page.get_by_text("error_ratio").first).to_be_visible()
            expect(page.get_by_text(re.compile("Passed|Succeeded")).first).to_be_visible()
            page.screenshot(path=str(shots / "audio_catalog-checks.png"), full_page=True)
            browser.close()
    assert (shots / "audio_catalog-checks.png").stat().st_size > 10_000
    catalog = data_dir / "catalog" / "audio_catalog.parquet"
    assert catalog.exists()
    print(f"screenshots in {shots}")
