"""Group commit: callers that write at the same moment share one trip to the database.

Each room message is its own transaction, and under gevent each call is a hand-off to the
database's thread and back; with many senders at once the hand-offs, not the writes, were the
cost. A ``Batcher`` lets the first caller lead: it takes every request waiting, runs them in one
``run_batch`` call (one transaction), hands each caller its own result, and passes the lead to
a caller that arrived meanwhile. Nobody's answer waits for more than the batch it is in.
"""
import threading


class _Request:
    __slots__ = ('args', 'wake', 'lead', 'finished', 'result', 'error')

    def __init__(self, args):
        self.args = args
        self.wake = threading.Event()  # set when it is finished, or when it is to lead
        self.lead = False
        self.finished = False
        self.result = None
        self.error = None


class Batcher:
    """Runs requests in batches through ``run_batch(list_of_args) -> list_of_outcomes``.

    An outcome that is an exception is raised to its caller alone; if ``run_batch`` itself
    raises, every caller in the batch gets that error.
    """

    def __init__(self, run_batch):
        self._run_batch = run_batch
        self._lock = threading.Lock()
        self._waiting = []
        self._leading = False

    def submit(self, *args):
        """Run one request, in a batch with whatever else is waiting; return its result."""
        request = _Request(args)
        with self._lock:
            self._waiting.append(request)
            if not self._leading:
                self._leading = request.lead = True
        while True:
            if request.lead:
                request.lead = False
                self._run_waiting()
            if request.finished:
                break
            request.wake.wait()
            request.wake.clear()
        if request.error is not None:
            raise request.error
        return request.result

    def _run_waiting(self):
        with self._lock:
            batch, self._waiting = self._waiting, []
        try:
            outcomes = self._run_batch([request.args for request in batch])
        except BaseException as error:  # every caller in the batch must hear of it
            outcomes = [error] * len(batch)
        for request, outcome in zip(batch, outcomes):
            if isinstance(outcome, BaseException):
                request.error = outcome
            else:
                request.result = outcome
            request.finished = True
        with self._lock:
            if self._waiting:
                successor = self._waiting[0]
                successor.lead = True  # its owner leads the next batch
                successor.wake.set()
            else:
                self._leading = False
        for request in batch:
            request.wake.set()
