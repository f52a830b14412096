"""Child processes a launcher starts, watches and stops, and the ports they listen on.

Each child's output is read line by line on a thread of its own and logged under the child's
name; a line matching its ``ready`` pattern marks it ready. Every wait here has a bound.
"""
import ctypes
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

# What run.py logs once its socket listens; the URL it serves on is the group.
WORKER_READY = re.compile(r'serving on (http://\S+)')

_PR_SET_PDEATHSIG = 1


def free_port(host='127.0.0.1'):
    """Return a TCP port on ``host`` that is free right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def port_is_free(host, port):
    """Return whether a server could listen on ``host``:``port`` now (as servers do, reusing
    an address whose old connections linger in TIME_WAIT)."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def describe_exit(returncode):
    """Say how a process ended: ``exit code 1`` or ``killed by SIGKILL``."""
    if returncode is not None and returncode < 0:
        try:
            return f'killed by {signal.Signals(-returncode).name}'
        except ValueError:
            return f'killed by signal {-returncode}'
    return f'exit code {returncode}'


def _die_with_parent():
    """A ``preexec_fn`` that has Linux send the child SIGTERM when its parent dies.

    The children run in sessions of their own, so that Ctrl-C reaches the launcher alone and it
    stops them in order; this keeps a launcher that is itself killed from leaving them behind.
    Linux sends the signal when the *thread* that started the child ends, so children are
    started from the main thread only.
    """
    if not sys.platform.startswith('linux'):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork

    def preexec():
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return preexec


class Child:
    """One child process with its output logged under ``name``.

    ``ready`` is a compiled pattern: the first output line matching it sets ``ready_match``.
    ``stdin_text`` is written to the child's standard input, which is then closed (a
    configuration that must not show in ``ps``).
    """

    def __init__(self, name, argv, *, env=None, cwd=None, ready=None, stdin_text=None):
        self.name = name
        self.argv = [str(arg) for arg in argv]
        self.env = env
        self.cwd = cwd
        self.ready_pattern = ready
        self.stdin_text = stdin_text
        self.ready_match = None
        self.process = None
        self.log = logging.getLogger(name)
        self._ready = threading.Event()
        self._pump_thread = None

    @property
    def pid(self):
        return self.process.pid

    def start(self):
        """Start the process; its output is logged from now on."""
        self.process = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, text=True, bufsize=1,
            stdin=subprocess.PIPE if self.stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent())
        if self.stdin_text is not None:
            with self.process.stdin:
                self.process.stdin.write(self.stdin_text)
        self._pump_thread = threading.Thread(target=self._pump, name=f'{self.name}-output',
                                             daemon=True)
        self._pump_thread.start()
        return self

    def poll(self):
        """Return the exit code, or None while the process runs."""
        return self.process.poll()

    def is_ready(self):
        """Return whether the ready line has been seen."""
        return self._ready.is_set() and self.ready_match is not None

    def wait_ready(self, timeout):
        """Wait up to ``timeout`` s for the ready line or the end of the output; return whether
        the line came."""
        self._ready.wait(timeout)
        return self.is_ready()

    def stop(self, timeout, signum=signal.SIGTERM):
        """Send ``signum`` and wait; kill after ``timeout`` s. Return whether it ended in time."""
        self.signal(signum)
        return self.wait_or_kill(timeout)

    def signal(self, signum):
        """Send ``signum`` to the child's process group: the child and whatever it started.

        The group outlives its leader: nginx's worker processes keep serving after their
        master is killed, until they are signalled too.
        """
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass  # nobody left in the group

    def wait_or_kill(self, timeout):
        """Wait up to ``timeout`` s for the process to end, then kill its whole group; return
        whether it ended in time. The output thread is joined either way."""
        in_time = True
        try:
            self.process.wait(max(timeout, 0))
        except subprocess.TimeoutExpired:
            in_time = False
            self.log.warning('still running %.0f s after being asked to stop; killing it', timeout)
            self.signal(signal.SIGKILL)
            self.process.wait(5)
        # Whatever is left of its group must not outlive it (and holds its output open).
        self.signal(signal.SIGKILL)
        if self._pump_thread is not None:
            self._pump_thread.join(5)
        return in_time

    def _pump(self):
        for line in self.process.stdout:
            self.log.info('%s', line.rstrip())
            if self.ready_pattern is not None and self.ready_match is None:
                match = self.ready_pattern.search(line)
                if match:
                    self.ready_match = match
                    self._ready.set()
        self.process.stdout.close()
        self._ready.set()  # no more lines: whoever waits for one stops waiting


def wait_until(predicate, timeout, interval=0.05, abort=None):
    """Call ``predicate`` until it returns true or ``timeout`` s pass; return its last value.

    ``abort`` (a callable) ends the wait early when it returns true.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline or (abort is not None and abort()):
            return value
        time.sleep(interval)
