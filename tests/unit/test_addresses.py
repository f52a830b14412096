"""Client addresses behind proxies, and the limits on connections per address, with a fake
clock."""
import pytest

from server.addresses import (ConnectionLimits, address_group, client_address,
                              parse_networks)

PROXIES = parse_networks(['10.0.0.0/8', '::1'])


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def environ(peer, forwarded=None):
    env = {'REMOTE_ADDR': peer}
    if forwarded is not None:
        env['HTTP_X_FORWARDED_FOR'] = forwarded
    return env


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_claims():
    assert client_address(environ('203.0.113.9', '198.51.100.1')) == '203.0.113.9'


def test_a_peer_that_is_not_a_trusted_proxy_cannot_name_another_client():
    assert client_address(environ('203.0.113.9', '198.51.100.1'), PROXIES) == '203.0.113.9'


def test_behind_trusted_proxies_the_rightmost_untrusted_address_is_the_client():
    # The client put a lie at the left; the proxies appended what they saw.
    forwarded = '6.6.6.6, 198.51.100.7, 10.1.2.3'
    assert client_address(environ('10.9.9.9', forwarded), PROXIES) == '198.51.100.7'
    assert client_address(environ('::1', '2001:db8::5'), PROXIES) == '2001:db8::5'


def test_a_trusted_proxy_without_a_usable_header_is_the_client():
    assert client_address(environ('10.9.9.9'), PROXIES) == '10.9.9.9'
    assert client_address(environ('10.9.9.9', 'unknown, 198.51.100.7'), PROXIES) == \
        '198.51.100.7'
    assert client_address(environ('10.9.9.9', '198.51.100.7, not-an-address'), PROXIES) == \
        '10.9.9.9'
    assert client_address(environ('10.9.9.9', '10.1.1.1, 10.2.2.2'), PROXIES) == '10.9.9.9'


def test_bad_proxy_entries_are_named():
    with pytest.raises(ValueError, match="'10.0.0.300'"):
        parse_networks(['10.0.0.1', '10.0.0.300'])


def test_an_ipv6_host_is_limited_by_its_64_and_ipv4_mapped_addresses_as_ipv4():
    assert address_group('2001:db8:1:2:aaaa::1') == address_group('2001:db8:1:2:bbbb::9') == \
        '2001:db8:1:2::/64'
    assert address_group('::ffff:192.0.2.4') == '192.0.2.4'
    assert address_group('192.0.2.4') == '192.0.2.4'
    assert address_group('-') == '-'


def test_an_address_holds_at_most_its_share_of_connections_until_one_closes():
    limits = ConnectionLimits(max_total=100, max_per_address=2, new_per_second=100,
                              new_burst=100, clock=Clock())
    for connection in ('a1', 'a2'):
        assert limits.admit('192.0.2.1') is None
        limits.opened(connection, '192.0.2.1')
    refusal = limits.admit('192.0.2.1')
    assert refusal.code == 'too_many_connections' and refusal.retry_after > 0
    assert limits.admit('192.0.2.2') is None
    limits.closed('a1')
    limits.closed('a1')  # told twice, counted once
    assert limits.open_from('192.0.2.1') == 1
    assert limits.admit('192.0.2.1') is None


def test_the_server_as_a_whole_holds_at_most_its_total():
    limits = ConnectionLimits(max_total=2, max_per_address=5, new_per_second=100,
                              new_burst=100, clock=Clock())
    limits.opened('a', '192.0.2.1')
    limits.opened('b', '192.0.2.2')
    assert limits.admit('192.0.2.3').code == 'server_full'
    limits.closed('b')
    assert limits.admit('192.0.2.3') is None
    assert len(limits) == 1


def test_opening_connections_too_fast_is_refused_until_the_allowance_refills():
    clock = Clock()
    limits = ConnectionLimits(max_total=100, max_per_address=100, new_per_second=2,
                              new_burst=3, clock=clock)
    verdicts = [limits.admit('192.0.2.1') for _ in range(4)]
    assert verdicts[:3] == [None] * 3
    assert verdicts[3].code == 'too_many_new_connections'
    assert limits.admit('192.0.2.2') is None
    clock.now = 0.5
    assert limits.admit('192.0.2.1') is None


def test_new_connection_allowances_of_gone_addresses_are_forgotten_once_full_again():
    clock = Clock()
    limits = ConnectionLimits(max_total=100, max_per_address=100, new_per_second=1,
                              new_burst=2, clock=clock)
    for index in range(50):
        limits.admit(f'192.0.2.{index}')
    clock.now = 10.0
    limits.admit('198.51.100.1')
    assert limits.remembered_addresses() == 1
