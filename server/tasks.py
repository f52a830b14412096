"""Running work without letting it pile up: a periodic background task, and a trampoline.

Neither imports Flask-SocketIO: the server hands ``PeriodicTask`` its ``spawn``
(``socketio.start_background_task``) and ``new_event`` (an event of the running async mode), so
both are tested with plain threads.
"""
import collections
import logging
import threading
import time

log = logging.getLogger(__name__)


class PeriodicTask:
    """Calls ``action()`` every ``interval`` seconds in one background task.

    An action may return a number of seconds: the next call then comes that much later, if
    that is sooner than its turn, and the schedule goes on every ``interval`` from there.

    Its start and stop are logged at INFO, or at DEBUG when ``quiet`` (a task that comes and goes
    with what clients do, such as typing). ``on_lag(seconds)``, if given, is told how late each
    run started against its schedule.
    """

    def __init__(self, name, interval, action, spawn, new_event, monotonic=time.monotonic,
                 quiet=False, on_lag=None):
        self.name = name
        self.interval = interval
        self._log_level = logging.DEBUG if quiet else logging.INFO
        self._on_lag = on_lag
        self._action = action
        self._spawn = spawn
        self._new_event = new_event
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._task = None
        self._stop_event = None
        self._closed = False

    @property
    def running(self):
        """Return whether the task is running."""
        return self._task is not None

    def start(self):
        """Start the task unless it runs already or was closed; return whether it started."""
        with self._lock:
            if self._task is not None or self._closed:
                return False
            self._stop_event = self._new_event()
            self._task = self._spawn(self._run, self._stop_event)
            log.log(self._log_level, '%s started, interval %.3fs', self.name, self.interval)
            return True

    def stop(self, timeout=None):
        """Stop the task; with a ``timeout``, also wait that long for it to finish."""
        with self._lock:
            task, self._task = self._task, None
            if task is None:
                return
            self._stop_event.set()
            log.log(self._log_level, '%s stopped', self.name)
        if timeout is not None:
            task.join(timeout)

    def close(self, timeout=None):
        """Stop the task for good (server shutdown): later ``start()`` calls do nothing."""
        with self._lock:
            self._closed = True
        self.stop(timeout)

    def _run(self, stop_event):
        # Deadlines are absolute so the interval does not drift by the time each action takes;
        # a task that falls behind (a stalled process) skips the missed runs, never bursts.
        # Waiting on the stop event rather than sleeping lets stop() end the wait at once.
        deadline = self._monotonic() + self.interval
        while not stop_event.wait(max(0.0, deadline - self._monotonic())):
            if self._on_lag is not None:
                self._on_lag(max(0.0, self._monotonic() - deadline))
            sooner = None
            try:
                sooner = self._action()
            except Exception:
                log.exception('%s failed', self.name)
            deadline += self.interval
            if deadline <= self._monotonic():
                deadline = self._monotonic() + self.interval
            if sooner is not None:
                deadline = min(deadline, self._monotonic() + sooner)


class Trampoline:
    """Runs actions one after another, never one inside another.

    An action posted while another runs (from inside it, or from another thread or greenlet) is
    queued and run by the loop already running, once the current action returns. Sending to a
    client can close another, dead, client inline and run its disconnect handler, which sends
    again: posted here, such chains run as a flat loop instead of a recursion as deep as the
    room is large. A failing action is logged and the loop goes on with the next.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._pending = collections.deque()
        self._running = False

    def post(self, action):
        """Run ``action()`` now, or after the action running now if there is one."""
        with self._lock:
            self._pending.append(action)
            if self._running:
                return
            self._running = True
        while True:
            with self._lock:
                if not self._pending:
                    self._running = False
                    return
                action = self._pending.popleft()
            try:
                action()
            except Exception:
                log.exception('a posted action failed')
            except BaseException:
                # The running greenlet is being killed: let the next post run what is left.
                with self._lock:
                    self._running = False
                raise
