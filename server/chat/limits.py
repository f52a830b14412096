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

    A client's buckets are not dropped when it leaves: buckets idle long enough to be full
    again are pruned instead, which changes no verdict, so leaving and coming back straight
    away never buys a fresh allowance.
    """

    def __init__(self, rate, burst, strikes, clock=time.monotonic):
        self._rate = rate
        self._burst = burst
        self._strikes = strikes
        self._clock = clock
        self._clients = {}
        self._refill_seconds = max(burst / rate, float(strikes))
        self._next_prune = clock() + self._refill_seconds

    def __len__(self):
        return len(self._clients)

    def check(self, client):
        """Spend one event of the client's allowance and return the verdict."""
        now = self._clock()
        if now >= self._next_prune:
            self._prune(now)
        events, strikes = self._clients.get(client) or self._clients.setdefault(client, (
            TokenBucket(self._rate, self._burst, now), TokenBucket(1.0, self._strikes, now)))
        if events.take(now):
            return Verdict.ALLOW
        return Verdict.REFUSE if strikes.take(now) else Verdict.DISCONNECT

    def _prune(self, now):
        idle_since = now - self._refill_seconds
        self._clients = {client: buckets for client, buckets in self._clients.items()
                         if max(bucket.updated for bucket in buckets) > idle_since}
        self._next_prune = now + self._refill_seconds
