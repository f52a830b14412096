"""A real PostgreSQL server (Debian's package) in a temporary folder on a free loopback port.

PostgreSQL refuses to run as root, so when the tests run as root its programs run as the
``postgres`` user on a folder that user owns. ``fsync=off`` saves time and, the page cache
surviving, still loses no commit when the server process is killed (only a machine crash would).
``.ci/run`` installs the package when it is missing.
"""
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.support.live_server import free_port

READY_WITHIN_S = 15
STOP_WITHIN_S = 10


def postgres_bin():
    """Return the newest installed PostgreSQL's bin folder."""
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                   key=lambda path: int(Path(path).parts[-3]))
    assert found, 'PostgreSQL is required: apt-get install postgresql (.ci/run does)'
    return Path(found[-1]).parent


class PostgresServer:
    """One ``postgres`` process; ``url`` points at its ``postgres`` database once started."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.bin = postgres_bin()
        # Run as postgres when we are root; every other user may run it as itself.
        self.user = 'postgres' if os.geteuid() == 0 else None
        self.folder = Path(tempfile.mkdtemp(prefix='chat-pg-'))
        self.data = self.folder / 'data'
        self.sockets = self.folder / 'sockets'
        self.log_path = self.folder / 'postgres.log'
        self.process = None
        self._databases = 0

    @property
    def url(self):
        """The URL of the server's maintenance database."""
        return self.database_url('postgres')

    def database_url(self, name):
        """Return the URL of database ``name`` on this server."""
        return f'postgresql://postgres@127.0.0.1:{self.port}/{name}'

    def start(self):
        """Create the cluster on first use, start the server and wait until it accepts clients."""
        if not self.data.exists():
            self._initdb()
        with self.log_path.open('a') as log:
            self.process = self._popen(
                ['postgres', '-D', self.data, '-p', str(self.port), '-k', self.sockets,
                 '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off',
                 '-c', 'full_page_writes=off'],
                stdout=log, stderr=subprocess.STDOUT,
                # Its own process group: kill() takes the backends down with it, as a crash would.
                start_new_session=True)
        self._wait_ready()
        return self

    def stop(self):
        """Stop the server with a fast shutdown (clients are disconnected), killing it if slow."""
        if not self.running():
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self):
        """Stop the server and start it again on the same port and data."""
        self.stop()
        return self.start()

    def kill(self):
        """Kill the server and every backend at once, as a crash of its machine would."""
        if self.running():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def running(self):
        """Return whether the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def create_database(self):
        """Create a fresh, empty database and return its URL."""
        self._databases += 1
        name = f'test_{self._databases}'
        self.admin(f'CREATE DATABASE {name}')
        return self.database_url(name)

    def drop_database(self, url):
        """Drop the database at ``url``, disconnecting whoever still uses it."""
        if self.running():
            self.admin(f'DROP DATABASE IF EXISTS {url.rsplit("/", 1)[1]} WITH (FORCE)')

    def admin(self, sql):
        """Run one statement outside a transaction in the maintenance database."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def remove(self):
        """Stop the server and delete its folder."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _initdb(self):
        self.sockets.mkdir()
        if self.user:
            for path in (self.folder, self.sockets):
                shutil.chown(path, self.user, self.user)
        done = self._popen(['initdb', '-D', self.data, '-U', 'postgres', '--auth=trust',
                            '-E', 'UTF8', '--locale=C', '--no-sync'],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output, _ = done.communicate(timeout=60)
        assert done.returncode == 0, f'initdb failed:\n{output}'

    def _popen(self, command, **options):
        program, *args = command
        return subprocess.Popen([str(self.bin / program), *map(str, args)], user=self.user,
                                group=self.user, extra_groups=[] if self.user else None,
                                cwd=self.folder, stdin=subprocess.DEVNULL,
                                env={'PATH': os.environ.get('PATH', ''), 'LC_ALL': 'C.UTF-8'},
                                **options)

    def _wait_ready(self):
        deadline = time.monotonic() + READY_WITHIN_S
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if not self.running() or time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f'postgres did not start:\n{self.log()}') from None
                time.sleep(0.05)

    def log(self):
        """Return what the server has logged so far."""
        return self.log_path.read_text(errors='replace') if self.log_path.exists() else ''

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.remove()


def wait_for_lock_waiters(conn, count, timeout=10.0):
    """Wait until ``count`` queries of this database wait for a lock, as ``conn`` sees it."""
    deadline = time.monotonic() + timeout
    while True:
        (waiting,) = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            'AND datname = current_database()').fetchone()
        if waiting == count:
            return
        assert time.monotonic() < deadline, f'{waiting} of {count} queries waiting for a lock'
        time.sleep(0.02)
