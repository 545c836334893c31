"""The real worker (`stream-tagger run`) as a child process, configured only through its settings.

Default settings except what must point at this benchmark: the broker, the engine repository and
the folder the videos live in. The console script is started by path (not through a pyenv shim),
so its pid is the Python process py-spy can attach to.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

PREFIX = "STREAM_TAGGER_"


def worker_env(bootstrap: str, engines_dir: Path, media_root: Path, worker_id: str,
               overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of one worker: inherited, with only the bench-specific settings set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    env |= {
        f"{PREFIX}BOOTSTRAP_SERVERS": bootstrap,
        f"{PREFIX}ENGINES_DIR": str(engines_dir),
        f"{PREFIX}FILE_ROOTS": f'["{media_root}"]',
        f"{PREFIX}WORKER_ID": worker_id,
    }
    return env | (overrides or {})


class WorkerProcess:
    """One ``stream-tagger run`` child; its output goes to a log file kept for the report."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        script = Path(sys.executable).with_name("stream-tagger")
        command = [str(script), "run"] if script.exists() else [sys.executable, "-m", "stream_tagger.cli", "run"]
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

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
