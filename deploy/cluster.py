"""Run several workers on this machine behind nginx: ``python -m deploy.cluster --workers 3``.

Starts redis-server on a free loopback port (unless ``MESSAGE_QUEUE`` is set), N ``run.py``
workers on consecutive ports after ``--port``, all with the same ``MESSAGE_QUEUE`` and
``DATABASE_URL`` and otherwise the launcher's environment, then nginx on ``--port`` with
sticky sessions in front of them. It prints one line saying where to point the browser.

A worker that dies is started again on its port after ``--restart-delay`` seconds (nginx sends
its clients to the others meanwhile), at most ``--max-restarts`` times per ``--restart-window``
seconds; past that, or when nginx or redis-server dies, everything is stopped and the exit code
is 1. Ctrl-C or SIGTERM stops nginx, the workers and redis-server in that order, and exits 0.
"""
import argparse
import collections
import http.client
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis

from deploy import nginx
from deploy.processes import (
    WORKER_READY, Child, describe_exit, free_port, port_is_free, wait_until,
)

log = logging.getLogger('cluster')

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 30     # for a worker's "serving on" line, redis' PING, nginx' /healthz
STOP_TIMEOUT_S = 10      # after SIGTERM, before SIGKILL
POLL_S = 0.2             # how often the children are looked at


class StartupError(RuntimeError):
    """The cluster could not be started; the message says which part and why."""


class Interrupted(Exception):
    """A stop was asked for while the cluster was starting."""


class WorkerSlot:
    """One worker port: the ``run.py`` serving it now, and when its predecessors died."""

    def __init__(self, index, port, env):
        self.name = f'worker-{index}'
        self.port = port
        self.env = {**env, 'HOST': '127.0.0.1', 'PORT': str(port)}
        self.child = None
        self.ready_by = None  # a deadline while the current process has not reported ready
        self.restart_at = None  # when a dead worker is due to be started again
        self.deaths = collections.deque()

    @property
    def address(self):
        return f'127.0.0.1:{self.port}'

    def spawn(self):
        """Start a ``run.py`` for this port; it is ready once it logs its serving line."""
        self.child = Child(self.name, [sys.executable, 'run.py'], env=self.env, cwd=ROOT,
                           ready=WORKER_READY).start()
        self.ready_by = time.monotonic() + READY_TIMEOUT_S
        return self.child


class Cluster:
    """Redis (when not given), the workers and nginx, started, watched and stopped together."""

    def __init__(self, *, workers, host, port, worker_port, run_dir, message_queue,
                 database_url, ping_interval, ping_timeout, max_payload_bytes, nginx_binary,
                 max_restarts, restart_window, restart_delay=0.0):
        self.host = host
        self.port = port
        self.run_dir = Path(run_dir)
        self.message_queue = message_queue
        self.nginx_binary = nginx_binary
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.restart_delay = restart_delay
        self.timeout_s = nginx.socketio_timeout(ping_interval, ping_timeout)
        self.body_bytes = nginx.max_body_bytes(max_payload_bytes)
        # The workers hear every client through the nginx started here, on loopback: they
        # read the client's address from its X-Forwarded-For (unless told otherwise).
        worker_env = {'TRUSTED_PROXIES': '127.0.0.1,::1', **os.environ,
                      'PYTHONUNBUFFERED': '1', 'DATABASE_URL': database_url}
        self.slots = [WorkerSlot(index + 1, worker_port + index, worker_env)
                      for index in range(workers)]
        self.redis = None
        self.nginx = None
        # A plain flag, not a threading.Event: a signal handler that takes a lock can deadlock
        # against the main thread it interrupted while holding that lock.
        self.stop_requested = False

    @property
    def url(self):
        """Where a browser on this machine finds the cluster."""
        return f'http://{nginx.host_port(_local_host(self.host), self.port)}'

    def run(self):
        """Start everything, watch it until a stop is asked for or a part fails, stop it all.

        Return the exit code: 0 after a requested stop that every child obeyed, else 1.
        """
        code = 0
        try:
            self._start()
            # The one line for people rather than the log: one write, so that no log line
            # from another thread lands inside it when both outputs go to one pipe.
            sys.stdout.write(f'Chat cluster ready: open {self.url} ({len(self.slots)} workers '
                             'behind nginx)\n')
            sys.stdout.flush()
            code = self._watch()
        except Interrupted:
            log.info('stop requested while starting')
        except StartupError as error:
            log.error('could not start the cluster: %s', error)
            code = 1
        if not self._stop_all():
            code = code or 1
        log.info('cluster stopped%s', '' if code == 0 else ' after a failure')
        return code

    def request_stop(self):
        """Ask ``run`` to stop everything (from a signal handler: it only sets a flag)."""
        self.stop_requested = True

    # -- starting --------------------------------------------------------------------------

    def _start(self):
        self._check_ports()
        if self.message_queue is None:
            self._start_redis()
        else:
            where = urlsplit(self.message_queue)
            log.info('using the given MESSAGE_QUEUE at %s:%s', where.hostname, where.port or 6379)
        for slot in self.slots:
            slot.env['MESSAGE_QUEUE'] = self.message_queue
            slot.spawn()
            log.info('started %s (pid %d) for port %d', slot.name, slot.child.pid, slot.port)
        for slot in self.slots:
            self._wait_worker_ready(slot)
        self._start_nginx()

    def _check_ports(self):
        taken = [f'{self.host}:{self.port}'] if not port_is_free(self.host, self.port) else []
        taken += [slot.address for slot in self.slots if not port_is_free('127.0.0.1', slot.port)]
        if taken:
            raise StartupError(f'in use already: {", ".join(taken)} (choose --port, or '
                               '--worker-port for the workers)')

    def _start_redis(self):
        binary = shutil.which('redis-server')
        if binary is None:
            raise StartupError('redis-server not found (apt-get install redis-server), '
                               'or set MESSAGE_QUEUE to a Redis of your own')
        port = free_port()
        # A password of this run only, so that no other local user can read or inject events;
        # the configuration goes in on stdin so that it does not show in `ps`.
        password = secrets.token_urlsafe(24)
        folder = self.run_dir / 'redis'
        folder.mkdir(parents=True, exist_ok=True)
        config = (f'bind 127.0.0.1\nport {port}\nsave ""\nappendonly no\n'
                  f'dir "{folder}"\nrequirepass {password}\n')
        self.redis = Child('redis', [binary, '-'], stdin_text=config).start()
        self.message_queue = f'redis://:{password}@127.0.0.1:{port}/0'
        log.info('started redis-server (pid %d) on 127.0.0.1:%d', self.redis.pid, port)
        if not self._wait(lambda: _redis_answers(self.message_queue), self.redis):
            raise StartupError(f'redis-server did not answer PING within {READY_TIMEOUT_S} s')

    def _wait_worker_ready(self, slot):
        remaining = max(slot.ready_by - time.monotonic(), 0)
        if not self._wait(slot.child.is_ready, slot.child, remaining):
            raise StartupError(f'{slot.name} did not report serving on port {slot.port} within '
                               f'{READY_TIMEOUT_S} s ({_state(slot.child)})')
        slot.ready_by = None
        log.info('%s (pid %d) serving on http://%s', slot.name, slot.child.pid, slot.address)

    def _start_nginx(self):
        binary = nginx.find_binary(self.nginx_binary)
        if binary is None:
            raise StartupError('nginx not found (apt-get install nginx), or give --nginx')
        config = nginx.write_config(
            self.run_dir, listen=nginx.host_port(self.host, self.port),
            workers=[slot.address for slot in self.slots], timeout_s=self.timeout_s,
            body_bytes=self.body_bytes)
        self.nginx = Child('nginx', nginx.command(binary, config, self.run_dir)).start()
        log.info('started nginx (pid %d) on %s:%d, configuration %s', self.nginx.pid, self.host,
                 self.port, config)
        if not self._wait(self._nginx_serves, self.nginx):
            raise StartupError(f'nginx did not serve /healthz within {READY_TIMEOUT_S} s '
                               f'({_state(self.nginx)}); see {self.run_dir}/logs/error.log')

    def _nginx_serves(self):
        connection = http.client.HTTPConnection(_local_host(self.host), self.port, timeout=2)
        try:
            connection.request('GET', '/healthz')
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def _wait(self, predicate, child, timeout=READY_TIMEOUT_S):
        """Wait for ``predicate`` while ``child`` runs; raise Interrupted on a stop request."""
        done = wait_until(predicate, timeout,
                          abort=lambda: self.stop_requested or child.poll() is not None)
        if self.stop_requested:
            raise Interrupted()
        return done

    # -- watching --------------------------------------------------------------------------

    def _watch(self):
        """Watch the children until a stop is asked for (0) or one fails for good (1)."""
        while True:
            time.sleep(POLL_S)
            if self.stop_requested:
                break
            for name, child in (('redis-server', self.redis), ('nginx', self.nginx)):
                if child is not None and child.poll() is not None:
                    log.error('%s (pid %d) exited unexpectedly (%s); stopping the cluster',
                              name, child.pid, describe_exit(child.poll()))
                    return 1
            for slot in self.slots:
                if not self._watch_worker(slot):
                    return 1
        log.info('stop requested; stopping nginx, the workers%s',
                 ' and redis-server' if self.redis else '')
        return 0

    def _watch_worker(self, slot):
        """Notice a worker that came up, hangs or died; return False when the cluster must stop."""
        if slot.restart_at is not None:
            if time.monotonic() >= slot.restart_at:
                slot.restart_at = None
                self._restart(slot)
            return True
        child = slot.child
        if slot.ready_by is not None and child.poll() is None:
            if child.is_ready():
                slot.ready_by = None
                log.info('%s (pid %d) serving again on http://%s', slot.name, child.pid,
                         slot.address)
            elif time.monotonic() > slot.ready_by:
                log.error('%s (pid %d) did not report serving within %d s; killing it',
                          slot.name, child.pid, READY_TIMEOUT_S)
                child.stop(5, signal.SIGKILL)
        if child.poll() is None:
            return True
        child.wait_or_kill(0)  # reaps it and ends its output thread
        log.error('%s (pid %d, port %d) died: %s', slot.name, child.pid, slot.port,
                  describe_exit(child.poll()))
        now = time.monotonic()
        slot.deaths.append(now)
        while slot.deaths[0] < now - self.restart_window:
            slot.deaths.popleft()
        if len(slot.deaths) > self.max_restarts:
            log.error('%s died %d times within %g s, more than --max-restarts %d; stopping the '
                      'cluster', slot.name, len(slot.deaths), self.restart_window,
                      self.max_restarts)
            return False
        if self.restart_delay > 0:
            slot.restart_at = now + self.restart_delay
            log.info('restarting %s in %g s; nginx sends its clients to the others meanwhile',
                     slot.name, self.restart_delay)
        else:
            self._restart(slot)
        return True

    def _restart(self, slot):
        """Start a dead worker's successor on its port."""
        slot.spawn()
        log.info('restarted %s (pid %d) for port %d; nginx sends its clients to the others '
                 'meanwhile', slot.name, slot.child.pid, slot.port)

    # -- stopping --------------------------------------------------------------------------

    def _stop_all(self):
        """Stop nginx, then every worker, then redis-server; return whether all obeyed SIGTERM
        within the bound (the others are killed)."""
        obeyed = True
        if self.nginx is not None:
            obeyed &= self._stop_group([self.nginx])
        # A worker waiting for its restart is dead and reaped already: its pid may be reused.
        obeyed &= self._stop_group([slot.child for slot in self.slots
                                    if slot.child is not None and slot.restart_at is None])
        if self.redis is not None:
            obeyed &= self._stop_group([self.redis])
        return obeyed

    def _stop_group(self, children):
        """SIGTERM to all of ``children`` at once, one bound for all; return whether each that
        was running stopped in time and cleanly."""
        running = [child.poll() is None for child in children]
        for child in children:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        obeyed = True
        for child, was_running in zip(children, running):
            obeyed &= child.wait_or_kill(deadline - time.monotonic())
            code = child.poll()
            if was_running and code not in (0, -signal.SIGTERM):
                log.warning('%s (pid %d) stopped with %s', child.name, child.pid,
                            describe_exit(code))
                obeyed = False
        return obeyed


def _redis_answers(url):
    try:
        with redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1) as client:
            return client.ping()
    except redis.RedisError:
        return False


def _local_host(host):
    """The address to reach a server listening on ``host`` from this machine."""
    return {'': '127.0.0.1', '0.0.0.0': '127.0.0.1', '::': '::1'}.get(host, host)


def _state(child):
    code = child.poll()
    return 'still running' if code is None else describe_exit(code)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='python -m deploy.cluster', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--workers', type=int, default=3, help='how many run.py (default 3)')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address nginx listens on (default 127.0.0.1; 0.0.0.0 for all)')
    parser.add_argument('--port', type=int, default=8000,
                        help='port nginx listens on (default 8000)')
    parser.add_argument('--worker-port', type=int,
                        help="the first worker's port, on 127.0.0.1 (default --port + 1)")
    parser.add_argument('--run-dir', type=Path,
                        help="folder for nginx's configuration, pid, logs and temporary files "
                             '(default: a new temporary folder, removed after a clean stop)')
    parser.add_argument('--nginx', help=f'nginx executable (default: on PATH, else '
                                        f'{nginx.DEFAULT_BINARY})')
    parser.add_argument('--max-restarts', type=int, default=3,
                        help='restarts of one worker allowed per --restart-window (default 3; '
                             '0 stops the cluster when a worker dies)')
    parser.add_argument('--restart-window', type=float, default=60.0,
                        help='seconds (default 60)')
    parser.add_argument('--restart-delay', type=float, default=0.0,
                        help='seconds to wait before starting a dead worker again (default 0: at '
                             'once, within 0.2 s)')
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error('--workers must be at least 1')
    if args.max_restarts < 0:
        parser.error('--max-restarts must be 0 or more')
    if args.restart_delay < 0:
        parser.error('--restart-delay must be 0 or more')
    first = args.port + 1 if args.worker_port is None else args.worker_port
    if not 0 < args.port < 65536 or not 0 < first <= 65536 - args.workers:
        parser.error('--port and the worker ports must be between 1 and 65535')
    if args.port in range(first, first + args.workers):
        parser.error('--port must not be one of the worker ports')
    args.worker_port = first
    return args


def main(argv=None):
    """Run the cluster until Ctrl-C or SIGTERM; return the exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)-9s| %(message)s',
                        datefmt='%H:%M:%S')
    try:
        # Read as the workers will (the environment and .env), so a bad value fails here once.
        from config import config_from_env
        config = config_from_env()
        config.check()
    except ValueError as error:
        log.error('configuration error: %s', error)
        return 2
    if args.workers > 1 and config.DATABASE_URL.endswith(':memory:'):
        log.error('DATABASE_URL keeps history in memory, one per worker: give the workers a '
                  'file or a server to share')
        return 2

    own_run_dir = args.run_dir is None
    run_dir = Path(tempfile.mkdtemp(prefix='chat-cluster-')) if own_run_dir else args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(workers=args.workers, host=args.host, port=args.port,
                      worker_port=args.worker_port, run_dir=run_dir,
                      message_queue=config.MESSAGE_QUEUE, database_url=config.DATABASE_URL,
                      ping_interval=config.PING_INTERVAL, ping_timeout=config.PING_TIMEOUT,
                      max_payload_bytes=config.MAX_PAYLOAD_BYTES,
                      nginx_binary=args.nginx, max_restarts=args.max_restarts,
                      restart_window=args.restart_window, restart_delay=args.restart_delay)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: cluster.request_stop())
    code = cluster.run()
    if own_run_dir and code == 0:
        shutil.rmtree(run_dir, ignore_errors=True)
    elif code != 0:
        log.info('logs kept in %s', run_dir)
    return code


if __name__ == '__main__':
    sys.exit(main())
