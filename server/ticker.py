"""The /test_conn ticker: one background task that publishes a random number.

Each worker runs its task while at least one of its clients is connected. On each tick the
worker asks the state for the lease and, only while it holds it, draws, numbers, records and
publishes the value: with one process the lease is always its own; with several workers sharing
Redis exactly one of them publishes, to every worker's clients. A worker whose last client leaves
stops its task and gives the lease up, so a worker that still has clients takes over at its next
tick; one that dies stops renewing it, and the lease expires ``lease_intervals`` intervals after
its last tick. A worker whose tick found the lease taken tries again the moment it runs out, when
that is sooner than its next tick, so a dead holder is replaced within ``lease_intervals``
intervals of its last value. ``seq`` and the recent values live in the state, so they carry on
either way.
"""
import contextlib
import logging
import random
import threading
import uuid

from server.clock import now_ms
from server.ticker_state import MemoryTickerState, StateUnavailable

log = logging.getLogger(__name__)


class Ticker:
    """Draws a number 1..100 every ``interval`` seconds and publishes it with a sequence number.

    ``periodic(name, interval, action)`` makes the background task (a ``PeriodicTask``);
    ``state`` is a ``MemoryTickerState`` (the default) or a ``RedisTickerState``.
    """

    # The holder renews the lease every interval; it keeps it through a stall of up to three
    # quarters of an interval, and a dead holder is replaced within two intervals.
    LEASE_INTERVALS = 1.75
    # A retry at the lease's end comes this much later, so that it finds the lease gone.
    RETRY_MARGIN = 0.005

    def __init__(self, interval, publish, periodic, state=None, rng=None, clock=now_ms,
                 lease_intervals=LEASE_INTERVALS):
        self._publish = publish
        self._state = state or MemoryTickerState()
        self._rng = rng or random.Random()
        self._clock = clock
        self._task = periodic('ticker', interval, self._scheduled_tick)
        # Held over a state call and the client count, never over a publish: sending can
        # disconnect a dead client inline, whose handler takes this lock again.
        self._lock = threading.Lock()
        self._token = uuid.uuid4().hex
        self._lease = lease_intervals * interval
        self._clients = 0
        self._closed = False
        self._holding = False
        self._lease_left = 0.0
        self._unavailable = False

    @property
    def interval(self):
        """Return the seconds between values."""
        return self._task.interval

    @property
    def running(self):
        """Return whether the background task is running."""
        return self._task.running

    def history(self):
        """Return the latest published values, oldest first (none while the state is out)."""
        values = []
        with self._outage_logged():
            values = self._state.history()
        return values

    def client_connected(self):
        """Count a client in; the first one starts the task."""
        with self._lock:
            self._clients += 1
            self._task.start()

    def client_disconnected(self):
        """Count a client out; the last one stops the task and gives the lease up."""
        with self._lock:
            self._clients = max(0, self._clients - 1)
            if self._clients == 0:
                self._task.stop()
                self._release()

    def stop(self, timeout=5.0):
        """Stop the task for good (server shutdown), give the lease up and close the state."""
        with self._lock:
            self._closed = True
        self._task.close(timeout)
        with self._lock:
            self._release()
        self._state.close()

    def tick(self):
        """Draw, record and publish one value if this ticker holds the lease; return it or None."""
        with self._lock:
            value = self._advance()
        return self._published(value)

    def _scheduled_tick(self):
        """One tick of the task; return the seconds until the next when sooner than usual."""
        # A tick that was already due when the last client left (or the server stopped) must
        # not take the lease back: the worker that still has clients is to get it.
        with self._lock:
            if self._clients == 0 or self._closed:
                return None
            value = self._advance()
            lease_left = self._lease_left
        self._published(value)
        if value is None and 0 < lease_left < self.interval:
            return lease_left + self.RETRY_MARGIN
        return None

    def _advance(self):
        data, ts = self._rng.randint(1, 100), self._clock()
        value, self._lease_left = None, 0.0
        with self._outage_logged():
            value, self._lease_left = self._state.advance(self._token, self._lease, data, ts)
            self._note_lease(value)
        return value

    def _note_lease(self, value):
        if value is not None and not self._holding:
            log.info('ticker lease taken at seq %d', value['seq'])
        elif value is None and self._holding:
            log.info('ticker lease held by another worker')
        self._holding = value is not None

    def _published(self, value):
        if value is not None:
            self._publish(value)
        return value

    def _release(self):
        # Not holding it any more either way. While the state is out the lease is left to
        # expire by itself, rather than making a stopping server wait for one more timeout.
        holding, self._holding = self._holding, False
        if not holding or self._unavailable:
            return
        with self._outage_logged():
            self._state.release(self._token)
            log.info('ticker lease released')

    @contextlib.contextmanager
    def _outage_logged(self):
        # An outage is logged when it starts and when it ends, not on every tick in between;
        # the block it ends early reads as "nothing": no value, no lease, no history.
        try:
            yield
        except StateUnavailable as error:
            if not self._unavailable:
                log.warning('ticker state unavailable, trying again every tick: %s', error)
            self._unavailable = True
        else:
            if self._unavailable:
                log.info('ticker state reachable again')
            self._unavailable = False
