"""The test kit tells its own process's listening socket from another's on the same port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.kit.stack import listens

# Listens on a port of its own and prints it, then waits to be killed.
LISTENER = (
    "import socket, sys, time\n"
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
    "print(s.getsockname()[1], flush=True); time.sleep(60)\n"
)


def test_own_listening_socket_is_recognised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert not listens(os.getpid(), port)  # bound, not yet listening
        s.listen()
        assert listens(os.getpid(), port)


def test_another_process_on_the_port_is_not_ours() -> None:
    other = subprocess.Popen([sys.executable, "-c", LISTENER], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout is not None
        port = int(other.stdout.readline())
        assert listens(other.pid, port)
        assert not listens(os.getpid(), port)
    finally:
        other.kill()
        other.wait()
    assert not listens(other.pid, port)
