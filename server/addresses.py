"""Who a connection comes from, and how many connections one address may hold and open.

Plain domain code: no Flask, no Socket.IO. ``client_address`` reads a WSGI environ;
``ConnectionLimits`` decides whether an address may open one more connection and remembers
which connection came from which address, so that its events can be limited per address too.
"""
import dataclasses
import ipaddress
import time

from server.chat.limits import TokenBucket

# An IPv6 host is usually given a whole /64: limits apply to that prefix, else one host could
# take a fresh address for every connection.
IPV6_GROUP_PREFIX = 64
UNKNOWN_ADDRESS = '-'


def parse_networks(entries):
    """Return the networks named by addresses or CIDR blocks; ValueError names a bad one."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f'{entry!r} is not an IP address or network') from None
    return tuple(networks)


def client_address(environ, trusted_proxies=()):
    """Return the address of the client behind a request.

    ``REMOTE_ADDR`` is the peer. Only when the peer is one of ``trusted_proxies`` is
    ``X-Forwarded-For`` read, from its right end (the entry the nearest proxy added) leftwards,
    skipping trusted proxies: the first address not trusted is the client. Entries further left
    were written by whoever sent the request and prove nothing.
    """
    peer = environ.get('REMOTE_ADDR') or UNKNOWN_ADDRESS
    if not trusted_proxies or not is_in(peer, trusted_proxies):
        return peer
    forwarded = environ.get('HTTP_X_FORWARDED_FOR', '')
    for entry in reversed([part.strip() for part in forwarded.split(',') if part.strip()]):
        if not _is_address(entry):
            return peer  # a malformed chain is not trusted at all
        if not is_in(entry, trusted_proxies):
            return entry
    return peer


def address_group(address):
    """Return the key an address's limits are kept under: itself, or its IPv6 /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 4:
        return str(parsed)
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.ip_network(f'{parsed}/{IPV6_GROUP_PREFIX}', strict=False))


def _is_address(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_in(address, networks):
    """Return whether ``address`` (text) is in one of ``networks``; an IPv4 address written
    as IPv6 (``::ffff:127.0.0.1``) counts as the IPv4 one. Not an address: False."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    parsed = getattr(parsed, 'ipv4_mapped', None) or parsed
    return any(parsed in network for network in networks)


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why a new connection is refused: a code, a message, and when to try again."""

    code: str
    message: str
    retry_after: int


class ConnectionLimits:
    """Bounds the connections open in total and per address, and how fast an address opens
    new ones; remembers each open connection's address group.

    ``admit`` is asked before a connection is made and ``opened`` told once it is, with no
    wait between the two (one greenlet, no I/O), so the counts cannot be overrun in between.
    """

    def __init__(self, max_total, max_per_address, new_per_second, new_burst,
                 clock=time.monotonic):
        self._max_total = max_total
        self._max_per_address = max_per_address
        self._new_per_second = new_per_second
        self._new_burst = new_burst
        self._clock = clock
        self._open = {}  # address group -> connections open
        self._group_of = {}  # connection -> its address group
        self._address_of = {}  # connection -> the address it came from
        self._arrivals = {}  # address group -> bucket of new connections
        self._refill_seconds = new_burst / new_per_second
        self._next_prune = clock() + self._refill_seconds

    def __len__(self):
        return len(self._group_of)

    def admit(self, address):
        """Return a Refusal if ``address`` may not open a connection now, else None.

        Every attempt, refused or not, spends one of the address's new-connection allowance.
        """
        group = address_group(address)
        now = self._clock()
        if now >= self._next_prune:
            self._prune(now)
        bucket = self._arrivals.get(group)
        if bucket is None:
            bucket = self._arrivals[group] = TokenBucket(self._new_per_second, self._new_burst,
                                                         now)
        if not bucket.take(now):
            return Refusal('too_many_new_connections',
                           'this address is opening connections too fast; wait and retry',
                           max(1, round(1 / self._new_per_second)))
        if self._open.get(group, 0) >= self._max_per_address:
            return Refusal('too_many_connections',
                           f'this address already holds {self._max_per_address} connections',
                           30)
        if len(self._group_of) >= self._max_total:
            return Refusal('server_full', 'the server holds all the connections it may', 30)
        return None

    def opened(self, connection, address):
        """Count an open connection against its address."""
        group = address_group(address)
        self._group_of[connection] = group
        self._address_of[connection] = address
        self._open[group] = self._open.get(group, 0) + 1

    def closed(self, connection):
        """Stop counting a connection; unknown or already closed ones are ignored."""
        group = self._group_of.pop(connection, None)
        self._address_of.pop(connection, None)
        if group is None:
            return
        left = self._open[group] - 1
        if left:
            self._open[group] = left
        else:
            del self._open[group]

    def group_of(self, connection):
        """Return the address group of an open connection, or None."""
        return self._group_of.get(connection)

    def address_of(self, connection):
        """Return the address an open connection came from, or ``-``."""
        return self._address_of.get(connection, UNKNOWN_ADDRESS)

    def open_from(self, address):
        """Return how many connections the address's group holds."""
        return self._open.get(address_group(address), 0)

    def remembered_addresses(self):
        """Return how many address groups' new-connection allowances are kept."""
        return len(self._arrivals)

    def _prune(self, now):
        # A bucket idle long enough to be full again changes no verdict: drop it, so that the
        # addresses that ever connected do not pile up.
        idle_since = now - self._refill_seconds
        self._arrivals = {group: bucket for group, bucket in self._arrivals.items()
                          if bucket.updated > idle_since}
        self._next_prune = now + self._refill_seconds
