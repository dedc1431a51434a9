"""The local stack and processes: the repository, the stack's addresses, free ports, stopping
children, PostgreSQL databases, and private Kafka, OPA and PostgreSQL for fault tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
from pathlib import Path

from tests.kit.waiting import answers

REPO = Path(__file__).resolve().parents[2]


STACK_ENV = REPO / "var" / "stack" / "stack.env"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket that listens on ``port`` (Linux's /proc). A port
    from free_port() is free only when it is asked for: another test's process may bind it
    before ours does, and its answers must not pass for ours."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                # local address as HEXIP:HEXPORT, state 0A is LISTEN, the socket's inode
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    with contextlib.suppress(FileNotFoundError):  # the process has ended
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # a descriptor closed meanwhile
                if os.readlink(fd) in inodes:
                    return True
    return False


def opa_binary() -> str:
    """The OPA the stack installs (deploy/local/install.sh, cached)."""
    return subprocess.run(
        [str(REPO / "deploy/local/install.sh"), "opa-path"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def stack_env() -> dict[str, str]:
    """Start (or reuse) the real local stack and return its addresses. Never skips: a missing
    Kafka, OPA or PostgreSQL fails the test run."""
    subprocess.run([str(REPO / "deploy/local/stack.sh"), "up"], check=True)
    env = {}
    for line in STACK_ENV.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            env[k.strip()] = v.strip()
    return env


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM a child process and wait for it; SIGKILL it if it has not exited in ``timeout``."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def new_postgres_database(stack: dict[str, str], name: str) -> str:
    """Create the empty database ``name`` on the stack's PostgreSQL cluster; its async URL. The
    databases a test session made are dropped at its end (``drop_made_databases``)."""
    _run_on_cluster(stack, f'CREATE DATABASE "{name}"')
    MADE.append((stack, name))
    return stack["SAMSYN_TEST_POSTGRES_DSN"].rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(stack: dict[str, str], name: str) -> None:
    """Drop the database ``name`` from the stack's PostgreSQL cluster, connections and all."""
    _run_on_cluster(stack, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The databases made by new_postgres_database in this process: (the stack, the name).
MADE: list[tuple[dict[str, str], str]] = []


def drop_made_databases() -> None:
    """Drop every database this process made. Why: on a developer's machine the stack's cluster
    outlives test runs, and each run made some twenty databases that nothing dropped (2 GB after
    a day's runs)."""
    while MADE:
        drop_postgres_database(*MADE.pop())


def _run_on_cluster(stack: dict[str, str], statement: str) -> None:
    import asyncpg

    base = stack["SAMSYN_TEST_POSTGRES_DSN"].replace("postgresql+asyncpg://", "postgresql://")

    async def run() -> None:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


class PrivateServices:
    """``deploy/local/kafka.sh`` and ``postgres.sh`` under their own ``SAMSYN_VAR`` (other ports,
    other data), for tests that stop and restart them without touching the shared stack."""

    def __init__(self, var: Path) -> None:
        self.var = var
        self.env = {**os.environ, "SAMSYN_VAR": str(var)}

    def script(self, name: str, command: str, *args: str) -> None:
        """Run ``deploy/local/<name>.sh <command> [args]``; its output goes to
        ``<var>/<name>.out``."""
        self.var.mkdir(parents=True, exist_ok=True)
        out = self.var / f"{name}.out"
        with out.open("ab") as sink:
            done = subprocess.run(
                [str(REPO / "deploy" / "local" / f"{name}.sh"), command, *args],
                env=self.env,
                cwd=REPO,
                stdout=sink,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            tail = out.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"{name}.sh {' '.join([command, *args])} failed ({done.returncode}):\n{tail}"
            )

    def stack_env(self) -> dict[str, str]:
        """The addresses the scripts wrote (SAMSYN_KAFKA_BOOTSTRAP, SAMSYN_TEST_POSTGRES_DSN)."""
        found: dict[str, str] = {}
        path = self.var / "stack" / "stack.env"
        for line in path.read_text().splitlines() if path.exists() else []:
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                found[key.strip()] = value.strip()
        return found

    def kafka_restart(self) -> None:
        """``kafka.sh restart``; Kafka must come back on the same address."""
        before = self.stack_env().get("SAMSYN_KAFKA_BOOTSTRAP")
        self.script("kafka", "restart")
        now = self.stack_env().get("SAMSYN_KAFKA_BOOTSTRAP")
        if now != before:
            raise RuntimeError(f"Kafka came back on {now}, not {before}")


class Opa:
    """A private OPA server on a fixed port, to stop and start in fault tests; it serves
    ``policies`` (the repository's by default)."""

    def __init__(self, port: int | None = None, policies: Path = REPO / "policies") -> None:
        self.port = port or free_port()
        self.policies = policies
        self.binary = opa_binary()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "run",
                "--server",
                "--addr",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "error",
                str(self.policies),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not answers(self.url + "/health", 30):
            raise RuntimeError("private OPA did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
