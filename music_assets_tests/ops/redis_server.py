"""A throwaway Redis server (Debian's redis-server) on 127.0.0.1, the Celery broker in tests."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

from music_assets_tests.ops.processes import free_port


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return
        time.sleep(0.05)
    raise TimeoutError(f"redis-server did not answer on port {port} in {timeout} s")


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Start redis-server without persistence in a temp dir; yield its URL; kill it and delete the dir."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server not found; `make test` installs the Debian package redis-server")
    root = tempfile.mkdtemp(prefix="music_assets_redis_")
    port = free_port()
    cmd = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", root]
    with open(f"{root}/log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_port(port, proc, 20)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)
