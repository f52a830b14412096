"""Local client addresses, for tests of nginx's sticky sessions on one machine.

nginx's ``ip_hash`` keys on the first three octets of an IPv4 address, and the whole of 127/8
is this machine, so clients sending from 127.0.1.1, 127.0.2.1 ... count as different machines.
"""
import requests
from requests.adapters import HTTPAdapter


def loopback_source(index):
    """The ``index``-th loopback address in a /24 of its own: 127.0.<index>.1."""
    return f'127.0.{index}.1'


class SourceAddressAdapter(HTTPAdapter):
    """Sends every request of a session from one local address."""

    def __init__(self, source):
        self.source = source
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, source_address=(self.source, 0), **kwargs)


def session_from(source):
    """A requests session whose every connection leaves from the local address ``source``."""
    session = requests.Session()
    session.mount('http://', SourceAddressAdapter(source))
    return session
