"""Run the real ``run.py`` as a child process on a free port, for live tests."""
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from config import Config
# The launcher's own knowledge of run.py's ready line, and of free ports (other test helpers
# import free_port from here).
from deploy.processes import WORKER_READY as READY
from deploy.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
# The settings run.py reads: a test gives each one it needs, none comes from the developer's
# environment.
SETTINGS = {name for name in dir(Config) if name.isupper()} | {'APP_ENV'}
# Every test client connects from 127.0.0.1, so the limits per client address would count a
# whole test's clients as one user: they are lifted, and the tests of those limits set them.
ONE_ADDRESS_FOR_ALL = {
    'MAX_CONNECTIONS_PER_ADDRESS': '1000000',
    'NEW_CONNECTIONS_PER_SECOND': '1000000',
    'NEW_CONNECTIONS_BURST': '1000000',
    'ADDRESS_RATE_LIMIT_PER_SECOND': '1000000',
    'ADDRESS_RATE_LIMIT_BURST': '1000000',
}


def hermetic_env(**settings):
    """The test process's environment without any server setting, plus ``settings``."""
    return {**{key: value for key, value in os.environ.items() if key not in SETTINGS},
            **{key: str(value) for key, value in settings.items()}}


def rss_bytes(pid):
    """Return the resident memory of process ``pid`` in bytes (VmRSS in its /proc status)."""
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'process {pid} reports no VmRSS')


class LiveServer:
    """One ``python run.py`` process; ``url`` is known once its log says it is serving.

    Unless ``DATABASE_URL`` is given, its database is ``chat.db`` beside its log. ``prefix`` is
    put before the command (a benchmark pins the server with ``taskset``), ``args`` after it.
    """

    def __init__(self, log_path, prefix=(), args=(), **env):
        self.log_path = Path(log_path)
        self.prefix = list(prefix)
        self.args = list(args)
        self.env = hermetic_env(**{
            'DATABASE_URL': f'sqlite:///{self.log_path.parent.resolve() / "chat.db"}',
            'APP_ENV': 'development',
            'HOST': '127.0.0.1',
            'PORT': '0',
            'LOG_LEVEL': 'INFO',
            'PYTHONUNBUFFERED': '1',
            **ONE_ADDRESS_FOR_ALL,
            **env,
        })
        self.url = None
        self.process = None
        self._ready = threading.Event()
        self._lines = []

    def start(self, timeout=20):
        """Start the process and wait, at most ``timeout`` seconds, for its ready line."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [*self.prefix, sys.executable, 'run.py', *self.args], cwd=ROOT, env=self.env,
            text=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()
        if not self._ready.wait(timeout):
            self.kill()
            raise RuntimeError(f'run.py did not report ready in {timeout}s:\n{self.output()}')
        if self.url is None:
            self.kill()  # reaps it
            raise RuntimeError(f'run.py exited before serving:\n{self.output()}')
        return self

    def stop(self, timeout=10):
        """Send SIGTERM and return the exit code; kill and raise if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f'run.py ignored SIGTERM for {timeout}s:\n{self.output()}')
        self._pump_thread.join(timeout)
        return code

    def kill(self):
        """Kill the process at once (used when something has already gone wrong)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
            self._pump_thread.join(5)

    def output(self):
        """Return everything the process has logged so far."""
        return ''.join(self._lines)

    def rss(self):
        """Return the process's resident memory in bytes."""
        return rss_bytes(self.process.pid)

    def _pump(self):
        with self.log_path.open('w') as log:
            for line in self.process.stdout:
                self._lines.append(line)
                log.write(line)
                log.flush()
                match = READY.search(line)
                if match and self.url is None:
                    self.url = match.group(1)
                    self._ready.set()
        self.process.stdout.close()
        self._ready.set()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        try:
            self.stop()
        finally:
            self.kill()


class RestartableServer:
    """run.py on one fixed port and database, which a test can stop and start again; ``env``
    adds to its settings."""

    def __init__(self, folder, **env):
        self.folder = folder
        self.env = env
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.database = f'sqlite:///{folder / "chat.db"}'
        self.starts = 0
        self.current = None

    def start(self):
        self.starts += 1
        self.current = LiveServer(self.folder / f'server-{self.starts}.log', **{
            'PORT': self.port, 'DATABASE_URL': self.database, 'PUSH_INTERVAL': '0.2',
            **self.env}).start()
        return self

    def restart(self):
        """Stop the server with SIGTERM (it must exit 0) and start it again on the same port."""
        assert self.current.stop() == 0
        self.start()

    def stop(self):
        try:
            self.current.stop()
        finally:
            self.current.kill()
