"""What every HTTP request and response passes through, Socket.IO's included.

Flask's own hooks never see ``/socket.io/``: Flask-SocketIO answers it before Flask does. This
WSGI middleware sits in front of both, so the security headers are on every response, and it
refuses JSONP long-polling (``?j=``), which engineio would otherwise serve as script.
"""
from urllib.parse import parse_qs

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


class Edge:
    """Wraps a WSGI app: security headers on every response, JSONP polling refused."""

    def __init__(self, app, socketio_path='/socket.io/'):
        self.app = app
        self.socketio_path = socketio_path

    def __call__(self, environ, start_response):
        def start_secured(status, headers, exc_info=None):
            present = {name.lower() for name, _ in headers}
            added = [header for header in SECURITY_HEADERS if header[0].lower() not in present]
            return start_response(status, [*headers, *added], exc_info)

        if self._asks_for_jsonp(environ):
            start_secured('400 Bad Request', [('Content-Type', 'text/plain; charset=utf-8'),
                                              ('Content-Length', str(len(JSONP_REFUSED)))])
            return [JSONP_REFUSED]
        return self.app(environ, start_secured)

    def _asks_for_jsonp(self, environ):
        return (environ.get('PATH_INFO', '').startswith(self.socketio_path)
                and 'j' in parse_qs(environ.get('QUERY_STRING', '')))
