"""A throwaway PostgreSQL server from Debian's packages, on 127.0.0.1.

For the tests and `bench/partitions.py --postgres`; nothing in the pipeline starts one.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator


def _bindir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found; `make test` installs the Debian package postgresql")
    return os.path.dirname(found[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a fresh cluster; yield its URL (trust auth on loopback); stop and delete it."""
    bindir = _bindir()
    root = tempfile.mkdtemp(prefix="music_assets_pg_")
    as_user: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root: run the server as Debian's postgres user.
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    pgdata = os.path.join(root, "data")
    port = _free_port()
    subprocess.run(
        [*as_user, f"{bindir}/initdb", "-D", pgdata, "-U", "dagster", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    subprocess.run(
        [
            *as_user,
            f"{bindir}/pg_ctl",
            "-D",
            pgdata,
            "-o",
            opts,
            "-l",
            os.path.join(root, "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            [*as_user, f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "dagster", "dagster"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://dagster@127.0.0.1:{port}/dagster"
    finally:
        subprocess.run(
            [*as_user, f"{bindir}/pg_ctl", "-D", pgdata, "-m", "immediate", "-w", "stop"], capture_output=True
        )
        time.sleep(0.2)
        shutil.rmtree(root, ignore_errors=True)
