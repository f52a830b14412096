"""Where the ticker keeps ``seq``, its recent values and its lease: this process, or Redis.

Both classes have the same methods. ``advance`` is the whole tick in one step: it takes or renews
the lease for ``token`` and, only if that worked, numbers the value and records it, so a worker
that lost the lease can never draw a ``seq``; one that did not get it learns when the lease runs
out, so it can try again right then. The lease matters with several workers sharing one Redis; in
one process only one ticker exists and it always gets the lease.
"""
import collections
import contextlib
import json
import threading
import time
from typing import NamedTuple

import redis


class StateUnavailable(Exception):
    """The shared state could not be reached; the caller tries again later."""


class Advance(NamedTuple):
    """What one ``advance`` did: the value it recorded, or how long another holds the lease."""

    value: dict | None
    lease_left: float = 0.0  # seconds, when ``value`` is None


class MemoryTickerState:
    """The state in this process: the embedded, single-worker default."""

    def __init__(self, history_size=60, monotonic=time.monotonic):
        self._history = collections.deque(maxlen=history_size)
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._seq = 0
        self._holder = None
        self._expires = 0.0

    def advance(self, token, lease, data, ts):
        """Take or renew the lease for ``lease`` seconds and record the next value."""
        with self._lock:
            now = self._monotonic()
            if self._holder not in (None, token) and now < self._expires:
                return Advance(None, self._expires - now)
            self._holder, self._expires = token, now + lease
            self._seq += 1
            value = {'data': data, 'seq': self._seq, 'ts': ts}
            self._history.append(value)
            return Advance(value)

    def release(self, token):
        """Give the lease up if ``token`` holds it."""
        with self._lock:
            if self._holder == token:
                self._holder = None

    def history(self):
        """Return the recorded values, oldest first."""
        with self._lock:
            return list(self._history)

    def close(self):
        """Nothing to close in memory."""


# Lease, seq and history in one script, so that no other worker runs between the lease check
# and the INCR. The value's JSON is put together here from the caller's integers; a lease held
# by another worker is answered with its milliseconds left.
ADVANCE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
    return redis.call('PTTL', KEYS[1])
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local seq = redis.call('INCR', KEYS[2])
local value = '{"data":' .. ARGV[3] .. ',"seq":' .. seq .. ',"ts":' .. ARGV[4] .. '}'
redis.call('RPUSH', KEYS[3], value)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[5]), -1)
return value
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisTickerState:
    """The state in Redis, shared by every worker; the lease is a key that expires.

    Keys: ``<prefix>lease`` (the holder's token, with a TTL), ``<prefix>seq`` (INCR) and
    ``<prefix>history`` (a list of JSON values capped at ``history_size``). Takes ownership of
    ``client`` (made with ``decode_responses=True``) and closes it in ``close()``.
    """

    def __init__(self, client, history_size=60, prefix='relay:ticker:'):
        self._client = client
        self._history_size = history_size
        self._keys = [f'{prefix}lease', f'{prefix}seq', f'{prefix}history']
        self._advance = client.register_script(ADVANCE)
        self._release = client.register_script(RELEASE)

    def advance(self, token, lease, data, ts):
        """Take or renew the lease for ``lease`` seconds and record the next value."""
        lease_ms = max(1, round(lease * 1000))
        with _unavailable_on_redis_error():
            answer = self._advance(self._keys, [token, lease_ms, int(data), int(ts),
                                                self._history_size])
        if isinstance(answer, int):
            return Advance(None, max(0, answer) / 1000)
        return Advance(json.loads(answer))

    def release(self, token):
        """Give the lease up if ``token`` holds it, so another worker takes it at once."""
        with _unavailable_on_redis_error():
            self._release(self._keys[:1], [token])

    def history(self):
        """Return the recorded values, oldest first."""
        with _unavailable_on_redis_error():
            return [json.loads(value) for value in self._client.lrange(self._keys[2], 0, -1)]

    def close(self):
        """Close the client's connections."""
        self._client.close()


@contextlib.contextmanager
def _unavailable_on_redis_error():
    # Any Redis failure (down, timing out, restarting) becomes the one error the ticker waits out.
    try:
        yield
    except redis.RedisError as error:
        raise StateUnavailable(f'{type(error).__name__}: {error}') from error
