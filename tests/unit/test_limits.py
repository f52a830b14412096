"""Rate limiting with a fake clock."""
from server.chat.limits import RateLimiter, TokenBucket, Verdict


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_bucket_allows_a_burst_then_refills_at_its_rate():
    bucket = TokenBucket(rate=2, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.25) is False
    assert bucket.take(0.5) is True
    assert bucket.take(10.0) and bucket.tokens == 2


def test_clients_have_separate_allowances():
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=2, strikes=5, clock=clock)
    assert [limiter.check('a') for _ in range(3)] == [Verdict.ALLOW, Verdict.ALLOW, Verdict.REFUSE]
    assert limiter.check('b') is Verdict.ALLOW


def test_an_occasional_excess_is_refused_but_a_flood_disconnects():
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=20, strikes=3, clock=clock)
    verdicts = [limiter.check('flooder') for _ in range(24)]
    assert verdicts[:20] == [Verdict.ALLOW] * 20
    assert verdicts[20:23] == [Verdict.REFUSE] * 3
    assert verdicts[23] is Verdict.DISCONNECT


def test_strikes_recover_over_time():
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=1, strikes=2, clock=clock)
    for second in range(10):
        clock.now = float(second)
        assert limiter.check('steady') is Verdict.ALLOW
        clock.now += 0.1
        assert limiter.check('steady') is Verdict.REFUSE


def test_idle_clients_are_pruned_only_once_their_buckets_would_be_full_again():
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=2, strikes=3, clock=clock)
    for client in ('idle', 'busy'):
        for _ in range(4):
            limiter.check(client)
    clock.now = 2.9
    limiter.check('busy')
    assert len(limiter) == 2
    clock.now = 3.5
    limiter.check('busy')
    assert len(limiter) == 1
    assert limiter.check('idle') is Verdict.ALLOW


def test_clients_of_one_group_share_its_allowance_as_well_as_having_their_own():
    clock = Clock()
    groups = {'a1': 'address-a', 'a2': 'address-a', 'b1': 'address-b'}
    limiter = RateLimiter(rate=10, burst=3, strikes=5, group_rate=1, group_burst=4,
                          group_of=groups.get, clock=clock)
    verdicts = [limiter.check(client) for client in ('a1', 'a2', 'a1', 'a2', 'a1', 'a2')]
    assert verdicts == [Verdict.ALLOW] * 4 + [Verdict.REFUSE] * 2
    assert limiter.check('b1') is Verdict.ALLOW  # another address is untouched
    clock.now = 1.0
    assert limiter.check('a2') is Verdict.ALLOW  # the group's allowance refills at its rate
    assert limiter.check('a1') is Verdict.REFUSE


def test_a_client_without_a_group_has_only_its_own_allowance():
    limiter = RateLimiter(rate=1, burst=2, strikes=5, group_rate=1, group_burst=1,
                          group_of={}.get, clock=Clock())
    assert [limiter.check('lone') for _ in range(3)] == [Verdict.ALLOW, Verdict.ALLOW,
                                                          Verdict.REFUSE]


def test_going_over_the_group_allowance_costs_strikes_until_a_disconnect():
    limiter = RateLimiter(rate=100, burst=100, strikes=2, group_rate=1, group_burst=1,
                          group_of=lambda client: 'shared', clock=Clock())
    verdicts = [limiter.check(client) for client in ('c0', 'c1', 'c0', 'c0', 'c0')]
    assert verdicts == [Verdict.ALLOW, Verdict.REFUSE, Verdict.REFUSE, Verdict.REFUSE,
                        Verdict.DISCONNECT]
