"""The /test_conn ticker: one background task per server that publishes a random number.

The task runs while at least one client is connected. When the last client leaves it stops,
keeping ``seq`` and the recent values, and the next client to connect starts it again with
``seq`` carrying on.
"""
import collections
import random
import threading

from server.clock import now_ms


class Ticker:
    """Draws a number 1..100 every ``interval`` seconds and publishes it with a sequence number.

    ``periodic(name, interval, action)`` makes the background task (a ``PeriodicTask``).
    """

    def __init__(self, interval, publish, periodic, history_size=60, rng=None, clock=now_ms):
        self._publish = publish
        self._rng = rng or random.Random()
        self._clock = clock
        self._history = collections.deque(maxlen=history_size)
        self._task = periodic('ticker', interval, self.tick)
        self._lock = threading.Lock()
        self._clients = 0
        self.seq = 0

    @property
    def interval(self):
        """Return the seconds between values."""
        return self._task.interval

    @property
    def running(self):
        """Return whether the background task is running."""
        return self._task.running

    def history(self):
        """Return the latest published values, oldest first."""
        return list(self._history)

    def client_connected(self):
        """Count a client in; the first one starts the task."""
        with self._lock:
            self._clients += 1
            self._task.start()

    def client_disconnected(self):
        """Count a client out; the last one stops the task."""
        with self._lock:
            self._clients = max(0, self._clients - 1)
            if self._clients == 0:
                self._task.stop()

    def stop(self, timeout=5.0):
        """Stop the task for good (server shutdown) and wait for it to finish."""
        self._task.close(timeout)

    def tick(self):
        """Draw, record and publish one value; return it."""
        self.seq += 1
        value = {'data': self._rng.randint(1, 100), 'seq': self.seq, 'ts': self._clock()}
        self._history.append(value)
        self._publish(value)
        return value
