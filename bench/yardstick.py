"""The Node socket.io yardstick (``bench/node/server.mjs``) as a child process, for benchmarks."""
import logging
import os
import subprocess
import threading
from pathlib import Path

from deploy.processes import WORKER_READY as READY

log = logging.getLogger(__name__)

SCRIPT = Path(__file__).resolve().parent / 'node' / 'server.mjs'


class Yardstick:
    """One ``node server.mjs`` process on a free port; ``url`` is known once it says it serves.

    ``prefix`` is put before the command (``taskset -c 0``); ``env`` adds to the environment.
    """

    def __init__(self, prefix=(), **env):
        self.prefix = list(prefix)
        self.env = {**os.environ, 'HOST': '127.0.0.1', 'PORT': '0',
                    **{key: str(value) for key, value in env.items()}}
        self.url = None
        self.process = None
        self._ready = threading.Event()
        self._lines = []

    def start(self, timeout=20):
        """Start the process and wait, at most ``timeout`` seconds, for its ready line."""
        if not (SCRIPT.parent / 'node_modules').is_dir():
            raise RuntimeError(f'run "npm ci" in {SCRIPT.parent} first (make bench does)')
        self.process = subprocess.Popen(
            [*self.prefix, 'node', str(SCRIPT)], env=self.env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()
        if not self._ready.wait(timeout) or self.url is None:
            self.kill()
            raise RuntimeError(f'the yardstick did not start:\n{"".join(self._lines)}')
        return self

    def stop(self, timeout=10):
        """Send SIGTERM and wait; kill it if it does not exit in time."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning('the yardstick ignored SIGTERM; killing it')
            self.kill()
        self._pump_thread.join(timeout)

    def kill(self):
        """Kill the process at once (used when something has already gone wrong)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def _pump(self):
        for line in self.process.stdout:
            self._lines.append(line)
            match = READY.search(line)
            if match and self.url is None:
                self.url = match.group(1)
                self._ready.set()
        self.process.stdout.close()
        self._ready.set()
