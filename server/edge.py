"""What every HTTP request and response passes through, Socket.IO's included.

Flask's own hooks never see ``/socket.io/``: Flask-SocketIO answers it before Flask does. This
WSGI middleware sits in front of both, so the security headers are on every response. It
names the client behind each request (``CLIENT_ADDRESS`` in the environ, read from
``X-Forwarded-For`` only when a trusted proxy sent it), refuses JSONP long-polling (``?j=``),
which engineio would otherwise serve as script, and refuses a new Socket.IO connection that
its address, or the server, has no room for.
"""
import json
import logging
import time
from urllib.parse import parse_qs

from server.addresses import UNKNOWN_ADDRESS, address_group, client_address

log = logging.getLogger(__name__)

CLIENT_ADDRESS = 'relay.client_address'
REFUSAL = 'relay.connection_refusal'
SOCKETIO_QUERY = 'relay.socketio_query'
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = (
    ('Content-Security-Policy', CONTENT_SECURITY_POLICY),
    ('X-Content-Type-Options', 'nosniff'),
    ('Referrer-Policy', 'no-referrer'),
)
JSONP_REFUSED = b'JSONP polling is not served; use XHR polling or WebSocket\n'
# A refused connection's status: the server as a whole is full (503), or the address is over
# its own limits (429); either way Retry-After says when to come back.
REFUSAL_STATUS = {'server_full': '503 Service Unavailable'}
TOO_MANY = '429 Too Many Requests'
# Refusals are logged once per address group per this many seconds, not once per attempt.
REFUSAL_LOG_SECONDS = 60.0
REFUSALS_REMEMBERED = 10_000


class Edge:
    """Wraps a WSGI app: security headers on every response, the client's address named,
    JSONP polling refused, and new connections over ``limits`` refused."""

    def __init__(self, app, socketio_path='/socket.io/', trusted_proxies=(), limits=None,
                 on_refusal=None, clock=time.monotonic):
        self.app = app
        self.socketio_path = socketio_path
        self.trusted_proxies = tuple(trusted_proxies)
        self.limits = limits
        self.on_refusal = on_refusal  # told each refusal's code (the metrics count them)
        self._clock = clock
        self._refusals_logged = {}  # address group -> when its last refusal was logged

    def __call__(self, environ, start_response):
        def start_secured(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            added = [header for header in SECURITY_HEADERS if header[0].lower() not in present]
            return start_response(status, [*headers, *added], exc_info)

        if self._asks_for_jsonp(environ):
            return _answer(start_secured, '400 Bad Request', JSONP_REFUSED, 'text/plain')
        refusal = self.refusal(environ)
        if refusal is not None:
            return self._refuse(start_secured, environ[CLIENT_ADDRESS], refusal)
        return self.app(environ, start_secured)

    def refusal(self, environ):
        """Return the Refusal of a request that would open a Socket.IO connection for which
        there is no room, else None; decided once per request, and asked early by the web
        server too, which must not upgrade a refused WebSocket.

        A handshake admitted here is counted as open by the Engine.IO connect that follows in
        this same greenlet, with no wait in between, so the counts are never overrun.
        """
        if REFUSAL not in environ:
            address = environ[CLIENT_ADDRESS] = client_address(environ, self.trusted_proxies)
            environ[REFUSAL] = (self.limits.admit(address)
                                if self.limits is not None and self._is_handshake(environ)
                                else None)
        return environ[REFUSAL]

    def _is_handshake(self, environ):
        query = self._socketio_query(environ)
        return query is not None and 'sid' not in query

    def _asks_for_jsonp(self, environ):
        query = self._socketio_query(environ)
        return query is not None and 'j' in query

    def _socketio_query(self, environ):
        """The query of a request to Socket.IO's path, parsed once; None for other paths."""
        if SOCKETIO_QUERY not in environ:
            environ[SOCKETIO_QUERY] = (
                parse_qs(environ.get('QUERY_STRING', ''))
                if environ.get('PATH_INFO', '').startswith(self.socketio_path) else None)
        return environ[SOCKETIO_QUERY]

    def _refuse(self, start_response, address, refusal):
        self._log_refusal(address, refusal)
        if self.on_refusal is not None:
            self.on_refusal(refusal.code)
        body = json.dumps({'code': refusal.code, 'message': refusal.message}).encode()
        return _answer(start_response, REFUSAL_STATUS.get(refusal.code, TOO_MANY), body,
                       'application/json', [('Retry-After', str(refusal.retry_after))])

    def _log_refusal(self, address, refusal):
        now = self._clock()
        group = address_group(address)
        if now - self._refusals_logged.get(group, float('-inf')) < REFUSAL_LOG_SECONDS:
            return
        if len(self._refusals_logged) >= REFUSALS_REMEMBERED:
            self._refusals_logged.clear()
        self._refusals_logged[group] = now
        log.warning('refused a connection from %s: %s (%s); more within %.0f s are not logged',
                    address, refusal.code, refusal.message, REFUSAL_LOG_SECONDS)


def address_of(environ):
    """Return the client address the edge named for a request (test clients, which do not
    pass through it, give the peer's)."""
    return environ.get(CLIENT_ADDRESS) or environ.get('REMOTE_ADDR') or UNKNOWN_ADDRESS


def _answer(start_response, status, body, content_type, headers=()):
    start_response(status, [('Content-Type', f'{content_type}; charset=utf-8'),
                            ('Content-Length', str(len(body))), *headers])
    return [body]
