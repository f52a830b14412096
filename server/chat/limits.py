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
    """Limits each client to ``rate`` events/s (bursts of ``burst``), and, when given
    ``group_rate``, each group of clients (``group_of(client)``: their address, say) to
    ``group_rate`` events/s (bursts of ``group_burst``) across all of them.

    Refusals are themselves counted in a bucket of ``strikes`` that refills at one per second,
    so a client that goes over the limit now and then is only refused, while one that keeps
    flooding runs out of strikes and is to be disconnected.

    A client's buckets are not dropped when it leaves: buckets idle long enough to be full
    again are pruned instead, which changes no verdict, so leaving and coming back straight
    away never buys a fresh allowance.
    """

    def __init__(self, rate, burst, strikes, group_rate=None, group_burst=None,
                 group_of=None, clock=time.monotonic):
        self._rate = rate
        self._burst = burst
        self._strikes = strikes
        self._group_rate = group_rate
        self._group_burst = group_burst or burst
        self._group_of = group_of if group_rate else None
        self._clock = clock
        self._clients = {}
        self._groups = {}
        self._refill_seconds = max(burst / rate, float(strikes),
                                   self._group_burst / group_rate if group_rate else 0.0)
        self._next_prune = clock() + self._refill_seconds

    def __len__(self):
        return len(self._clients)

    def check(self, client):
        """Spend one event of the client's allowance, and of its group's if it has one, and
        return the verdict: an event over either allowance is refused, and costs a strike."""
        now = self._clock()
        if now >= self._next_prune:
            self._prune(now)
        events, strikes = self._clients.get(client) or self._clients.setdefault(client, (
            TokenBucket(self._rate, self._burst, now), TokenBucket(1.0, self._strikes, now)))
        if events.take(now) and self._group_allows(client, now):
            return Verdict.ALLOW
        return Verdict.REFUSE if strikes.take(now) else Verdict.DISCONNECT

    def _group_allows(self, client, now):
        group = self._group_of(client) if self._group_of is not None else None
        if group is None:
            return True
        bucket = self._groups.get(group)
        if bucket is None:
            bucket = self._groups[group] = TokenBucket(self._group_rate, self._group_burst, now)
        return bucket.take(now)

    def _prune(self, now):
        idle_since = now - self._refill_seconds
        self._clients = {client: buckets for client, buckets in self._clients.items()
                         if max(bucket.updated for bucket in buckets) > idle_since}
        self._groups = {group: bucket for group, bucket in self._groups.items()
                        if bucket.updated > idle_since}
        self._next_prune = now + self._refill_seconds
