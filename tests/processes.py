"""Run a module under torchrun on this machine (gloo on the CPU), as a user runs it on N GPUs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys


def launcher(processes: int) -> list[str]:
    """torchrun's arguments for ``processes`` processes, its rendezvous on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return ["-m", "torch.distributed.run", "--nnodes=1", f"--nproc-per-node={processes}",
            "--master-addr=127.0.0.1", f"--master-port={port}"]  # fmt: skip


def environment() -> dict[str, str]:
    """One thread per process (two processes share this machine's two cores)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def command(module_args: list[str], processes: int) -> list[str]:
    """``python -m …`` on one process, ``torchrun … -m …`` on several."""
    if processes == 1:
        return [sys.executable, *module_args]
    return [sys.executable, *launcher(processes), *module_args]


def run(module_args: list[str], processes: int, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """Run to the end; fail with the tail of stderr when it does not exit 0."""
    done = subprocess.run(
        command(module_args, processes), env=environment(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done
