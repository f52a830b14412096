"""The /test_conn ticker: one background task per server that publishes a random number.

The task runs while at least one client is connected. When the last client leaves it stops,
keeping ``seq`` and the recent values, and the next client to connect starts it again with
``seq`` carrying on. It imports no Flask-SocketIO: the server hands it the functions to publish,
to start a task and to make a stop event, so the schedule is tested with plain calls.
"""
import collections
import logging
import random
import threading
import time

from server.clock import now_ms

log = logging.getLogger(__name__)


class Ticker:
    """Draws a number 1..100 every ``interval`` seconds and publishes it with a sequence number."""

    def __init__(self, interval, publish, spawn, new_event, history_size=60,
                 rng=None, clock=now_ms, monotonic=time.monotonic):
        self.interval = interval
        self._publish = publish
        self._spawn = spawn
        self._new_event = new_event
        self._rng = rng or random.Random()
        self._clock = clock
        self._monotonic = monotonic
        self._history = collections.deque(maxlen=history_size)
        self._lock = threading.Lock()
        self._clients = 0
        self._task = None
        self._stop_event = None
        self.seq = 0

    @property
    def running(self):
        """Return whether the background task is running."""
        return self._task is not None

    def history(self):
        """Return the latest published values, oldest first."""
        return list(self._history)

    def client_connected(self):
        """Count a client in; the first one starts the task."""
        with self._lock:
            self._clients += 1
            if self._task is None:
                self._stop_event = self._new_event()
                self._task = self._spawn(self._run, self._stop_event)
                log.info('ticker started, interval %.3fs', self.interval)

    def client_disconnected(self):
        """Count a client out; the last one stops the task."""
        with self._lock:
            self._clients = max(0, self._clients - 1)
            if self._clients == 0:
                self._halt()

    def stop(self, timeout=5.0):
        """Stop the task for good (server shutdown) and wait for it to finish."""
        with self._lock:
            task = self._task
            self._halt()
        if task is not None:
            task.join(timeout)

    def tick(self):
        """Draw, record and publish one value; return it."""
        self.seq += 1
        value = {'data': self._rng.randint(1, 100), 'seq': self.seq, 'ts': self._clock()}
        self._history.append(value)
        self._publish(value)
        return value

    def _halt(self):
        if self._task is not None:
            self._stop_event.set()
            self._task = None
            log.info('ticker stopped after seq %d', self.seq)

    def _run(self, stop_event):
        # Deadlines are absolute so the interval does not drift by the time each tick takes;
        # a task that falls behind (a stalled process) skips the missed ticks, never bursts.
        # Waiting on the stop event rather than sleeping lets shutdown end the wait at once.
        deadline = self._monotonic() + self.interval
        while not stop_event.wait(max(0.0, deadline - self._monotonic())):
            try:
                self.tick()
            except Exception:
                log.exception('ticker failed to publish seq %d', self.seq)
            deadline += self.interval
            if deadline <= self._monotonic():
                deadline = self._monotonic() + self.interval
