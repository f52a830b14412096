"""Timestamps as clients receive them."""
import time


def now_ms():
    """Return the wall-clock time in whole milliseconds since the epoch."""
    return int(time.time() * 1000)
