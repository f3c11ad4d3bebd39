"""Run ``rareevent`` commands for the quality benchmarks: in-process (CliRunner) or through the installed entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def rareevent(args: list[str], use_cli: bool = False) -> None:
    """Run one ``rareevent`` command; stop the benchmark with its output when it fails."""
    if use_cli:
        exe = str(Path(sys.executable).with_name("rareevent"))
        done = subprocess.run([exe, *args], capture_output=True, text=True)
        code, output = done.returncode, done.stdout + done.stderr
    else:
        from typer.testing import CliRunner

        from rareevent.cli.main import app

        result = CliRunner().invoke(app, args)
        code, output = result.exit_code, result.output
    if code != 0:
        raise SystemExit(f"rareevent {' '.join(args)} failed:\n{output[-2000:]}")
