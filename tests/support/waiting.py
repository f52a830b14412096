"""Waiting for something another process or thread brings about."""
import time


def eventually(predicate, timeout=5.0, interval=0.05):
    """Wait until ``predicate()`` holds, looking every ``interval`` seconds; fail after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'condition not met in time'
        time.sleep(interval)
