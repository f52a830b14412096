"""The real launcher, ``python -m deploy.cluster``, as a child process of a test.

It starts redis-server, the workers and nginx itself; this helper reads its output, knows every
pid it reported starting, and makes sure none of them outlives the test.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple

from deploy.processes import free_port, port_is_free
from tests.support.live_server import ONE_ADDRESS_FOR_ALL, hermetic_env
from tests.support.addresses import loopback_source, session_from

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(r'^Chat cluster ready: open (http://\S+)')
STARTED = re.compile(r'\b(?:re)?started (\S+) \(pid (\d+)\)')
# deploy/nginx.conf's log_format; $upstream_addr lists every worker tried, ", " between them.
ACCESS_LINE = re.compile(r'^(\S+) \[[^\]]*\] "(\w+) (\S+)" (\d+) upstream=(.*) (\S+)$')


class Access(NamedTuple):
    """One request in nginx's access log."""

    source: str
    method: str
    path: str
    status: str
    upstreams: tuple  # the workers tried, in order ('-' when none was)


def free_port_block(count, attempts=100):
    """Return a port P such that P .. P + count - 1 are all free on the loopback now."""
    for _ in range(attempts):
        first = free_port()
        if first + count <= 65536 and all(port_is_free('127.0.0.1', first + offset)
                                          for offset in range(count)):
            return first
    raise RuntimeError(f'no {count} consecutive free ports found')


class ClusterProcess:
    """``python -m deploy.cluster`` with ``workers`` workers on free ports, logging into ``folder``.

    Its history is ``chat.db`` in ``folder`` unless ``DATABASE_URL`` is given, its nginx files
    are in ``folder/run``, and it starts its own redis-server unless ``MESSAGE_QUEUE`` is given.
    """

    def __init__(self, folder, workers=2, args=(), **env):
        self.folder = Path(folder)
        self.run_dir = self.folder / 'run'
        self.workers = workers
        self.port = free_port_block(workers + 1)
        self.url = None
        self.argv = [sys.executable, '-m', 'deploy.cluster', '--workers', str(workers),
                     '--port', str(self.port), '--run-dir', str(self.run_dir), *args]
        self.env = hermetic_env(**{
            'DATABASE_URL': f'sqlite:///{self.folder.resolve() / "chat.db"}',
            'APP_ENV': 'development',
            'LOG_LEVEL': 'INFO',
            'PYTHONUNBUFFERED': '1',
            **ONE_ADDRESS_FOR_ALL,
            **env,
        })
        self.process = None
        self.pids = {}  # name -> every pid reported for it, oldest first
        self._lines = []
        self._eof = False
        self._changed = threading.Condition()
        self._pump_thread = None

    @property
    def worker_ports(self):
        return [self.port + 1 + index for index in range(self.workers)]

    def worker_name(self, address):
        """The launcher's name (``worker-2``) for a worker address (``127.0.0.1:<port>``)."""
        index = self.worker_ports.index(int(address.rsplit(':', 1)[1]))
        return f'worker-{index + 1}'

    def access_log(self):
        """Every request nginx has logged so far, oldest first."""
        path = self.run_dir / 'logs' / 'access.log'
        records = []
        for line in path.read_text().split('\n')[:-1]:  # the last is empty or being written
            source, method, uri, status, upstreams, _time = ACCESS_LINE.match(line).groups()
            records.append(Access(source, method, uri, status, tuple(upstreams.split(', '))))
        return records

    def worker_for(self, source, timeout=5.0):
        """The name of the worker nginx sends requests from the local address ``source`` to.

        Asks for /healthz from there and reads the answer's upstream in the access log (nginx
        writes the line once the response is out, so it is waited for).
        """
        with session_from(source) as http:
            assert http.get(f'{self.url}/healthz', timeout=timeout).status_code == 200
        deadline = time.monotonic() + timeout
        while True:
            served = [record.upstreams[-1] for record in self.access_log()
                      if record.source == source and record.path == '/healthz']
            if served:
                return self.worker_name(served[-1])
            assert time.monotonic() < deadline, f'nginx logged no request from {source}'
            time.sleep(0.05)

    def sources_by_worker(self, per_worker, candidates=32):
        """{worker name: [local address]}: ``per_worker`` loopback addresses in /24s of their
        own (127.0.1.1, 127.0.2.1 ...) that nginx's ip_hash sends to each worker."""
        found = {f'worker-{index + 1}': [] for index in range(self.workers)}
        for index in range(1, candidates + 1):
            source = loopback_source(index)
            chosen = found[self.worker_for(source)]
            if len(chosen) < per_worker:
                chosen.append(source)
            if all(len(sources) == per_worker for sources in found.values()):
                return found
        raise AssertionError(f'ip_hash did not give each worker {per_worker} of {candidates} '
                             f'addresses: {found}')

    def socketio_route(self, source):
        """The workers that answered the Socket.IO requests from ``source``, in the log's order,
        one entry per run of requests to the same worker (the last one nginx tried counts)."""
        names = [self.worker_name(record.upstreams[-1]) for record in self.access_log()
                 if record.source == source and record.path.startswith('/socket.io')
                 and record.upstreams[-1] != '-']  # '-': nginx answered it alone
        return [name for index, name in enumerate(names) if index == 0 or names[index - 1] != name]

    def launch(self):
        """Start the launcher without waiting for anything."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, text=True,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()
        return self

    def start(self, timeout=60):
        """Start the launcher and wait, at most ``timeout`` s, for its ready line."""
        self.launch()
        try:
            self.url = self.wait_for_line(READY, timeout).group(1)
        except AssertionError:
            self.kill()
            raise
        return self

    def wait_for_line(self, pattern, timeout, after=0):
        """Wait until a line (from the ``after``-th on) matches ``pattern``; return the match."""
        pattern = re.compile(pattern)

        def found():
            for line in self._lines[after:]:
                match = pattern.search(line)
                if match:
                    return match
            return None

        with self._changed:
            if not self._changed.wait_for(lambda: found() or self._ended(), timeout):
                raise AssertionError(f'no line matching {pattern.pattern!r} within {timeout} s:'
                                     f'\n{self.output()}')
            match = found()
        if match is None:
            raise AssertionError(f'the launcher ended without a line matching '
                                 f'{pattern.pattern!r}:\n{self.output()}')
        return match

    def line_count(self):
        with self._changed:
            return len(self._lines)

    def lines(self, after=0):
        """The launcher's output lines from the ``after``-th on."""
        with self._changed:
            return self._lines[after:]

    def pid(self, name):
        """The pid most recently reported for ``name`` (``worker-1``, ``nginx``, ...)."""
        with self._changed:
            return self.pids[name][-1]

    def all_pids(self):
        """Every pid the launcher reported, and nginx's worker processes now running."""
        with self._changed:
            pids = [pid for reported in self.pids.values() for pid in reported]
        for master in self.pids.get('nginx', []):
            pids += children_of(master)
        return pids

    def wait(self, timeout):
        """Wait for the launcher to exit and return its exit code."""
        code = self.process.wait(timeout)
        self._pump_thread.join(timeout)
        return code

    def stop(self, timeout=30):
        """Send SIGTERM and return the exit code; kill everything and raise if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f'the launcher ignored SIGTERM for {timeout} s:\n{self.output()}')

    def kill(self):
        """Kill the launcher and every process it reported starting (after a failure)."""
        leftovers = self.all_pids()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._pump_thread is not None:
            self._pump_thread.join(5)

    def output(self):
        with self._changed:
            return ''.join(self._lines)

    def _ended(self):
        return self._eof

    def _pump(self):
        with (self.folder / 'cluster.log').open('w') as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                with self._changed:
                    self._lines.append(line)
                    started = STARTED.search(line)
                    if started:
                        self.pids.setdefault(started.group(1), []).append(int(started.group(2)))
                    self._changed.notify_all()
        self.process.stdout.close()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        try:
            if self.process.poll() is None:
                self.stop()
        finally:
            self.kill()


def children_of(pid):
    """The pids whose parent is ``pid`` now (from /proc)."""
    children = []
    for entry in Path('/proc').iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name in field 2 may hold spaces; the fields after it do not.
            fields = (entry / 'stat').read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


def running(pid):
    """Return whether a process with this pid exists and is not a zombie."""
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except OSError:
        return False
    return state != 'Z'
