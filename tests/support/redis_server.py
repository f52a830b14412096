"""A real ``redis-server`` (Debian's package) on a free loopback port, for tests.

Nothing is persisted: the server keeps its data in memory and its folder is the test's.
``.ci/run`` installs the package when it is missing.
"""
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.live_server import free_port

READY_WITHIN_S = 10


class RedisServer:
    """One ``redis-server`` process; ``url`` is ``redis://127.0.0.1:PORT/0`` once started."""

    def __init__(self, folder, port=None):
        self.folder = Path(folder)
        self.port = port or free_port()
        self.url = f'redis://127.0.0.1:{self.port}/0'
        self.process = None

    def start(self):
        """Start the server and wait until it answers PING."""
        binary = shutil.which('redis-server')
        assert binary, 'redis-server is required: apt-get install redis-server (.ci/run does)'
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [binary, '--bind', '127.0.0.1', '--port', str(self.port), '--save', '',
             '--appendonly', 'no', '--dir', str(self.folder), '--logfile', 'redis.log'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_WITHIN_S
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f'redis-server did not start; see {self.folder}/redis.log')
            time.sleep(0.05)
        return self

    def ping(self):
        """Return whether the server answers PING."""
        return self.command('PING') == '+PONG'

    def command(self, *words):
        """Send one command in Redis' inline form and return the first reply line, or None."""
        try:
            with socket.create_connection(('127.0.0.1', self.port), timeout=1) as conn:
                conn.sendall((' '.join(words) + '\r\n').encode())
                return conn.makefile('rb').readline().decode().strip()
        except OSError:
            return None

    def flush(self):
        """Forget every key, so that the next test starts from an empty server."""
        assert self.command('FLUSHALL') == '+OK'

    def stop(self):
        """Stop the server (SIGTERM), killing it if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def kill(self):
        """Kill the server at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
