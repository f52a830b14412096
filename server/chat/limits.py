"""Per-client rate limiting: a token bucket for events, and a second one for refusals."""
import enum
import time


class TokenBucket:
    """Holds up to ``burst`` tokens, refilled at ``rate`` per second; each event takes one."""

    def __init__(self, rate, burst, now):
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def take(self, now):
        """Take a token if one is left; return whether one was."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Verdict(enum.Enum):
    """What to do with a client's event."""

    ALLOW = 'allow'
    REFUSE = 'refuse'
    DISCONNECT = 'disconnect'


class RateLimiter:
    """Limits each client to ``rate`` events/s (bursts of ``burst``).

    Refusals are themselves counted in a bucket of ``strikes`` that refills at one per second,
    so a client that goes over the limit now and then is only refused, while one that keeps
    flooding runs out of strikes and is to be disconnected.
    """

    def __init__(self, rate, burst, strikes, clock=time.monotonic):
        self._rate = rate
        self._burst = burst
        self._strikes = strikes
        self._clock = clock
        self._clients = {}

    def check(self, sid):
        """Spend one event of the client's allowance and return the verdict."""
        now = self._clock()
        events, strikes = self._clients.get(sid) or self._clients.setdefault(sid, (
            TokenBucket(self._rate, self._burst, now), TokenBucket(1.0, self._strikes, now)))
        if events.take(now):
            return Verdict.ALLOW
        return Verdict.REFUSE if strikes.take(now) else Verdict.DISCONNECT

    def forget(self, sid):
        """Drop a departed client's buckets."""
        self._clients.pop(sid, None)
