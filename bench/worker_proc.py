"""The real worker (`stream-tagger run`) as a child process, configured only through its settings.

Default settings except what must point at this benchmark: the broker, the engine repository and
the folder the videos live in. The console script is started by path (not through a pyenv shim),
so its pid is the Python process py-spy can attach to.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from bench.cpu import children

PREFIX = "STREAM_TAGGER_"


def worker_env(
    bootstrap: str,
    engines_dir: Path,
    media_root: Path,
    worker_id: str,
    overrides: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one worker: inherited, with only the bench-specific settings set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    env |= {
        f"{PREFIX}BROKERS": bootstrap,
        f"{PREFIX}ENGINE_DIR": str(engines_dir),
        f"{PREFIX}URI_ROOTS": json.dumps([str(media_root)]),
        f"{PREFIX}WORKER_ID": worker_id,
        f"{PREFIX}METRICS_PORT": "0",  # any free port: two workers share this host
    }
    return env | (overrides or {})


def worker_command() -> list[str]:
    """``stream-tagger run``, by the console script's real path (not a pyenv shim) when it has one."""
    script = Path(sys.executable).with_name("stream-tagger")
    if script.exists():
        return [str(script), "run"]
    return [sys.executable, "-m", "stream_tagger.cli", "run"]


class WorkerProcess:
    """One ``stream-tagger run`` child; its output goes to a log file kept for the report."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(worker_command(), env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def freeze(self) -> None:
        """SIGSTOP the worker and its decode processes: an idle worker still polls Kafka, which the
        decode bound must not pay for. ``thaw`` resumes them (the worker then rejoins its group)."""
        for pid in [self.pid, *children(self.pid)]:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in [*children(self.pid), self.pid]:
            os.kill(pid, signal.SIGCONT)

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM (graceful drain), then SIGKILL if it does not exit in time."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
