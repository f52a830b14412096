"""Start the server on gevent: ``python run.py [--access-log]``; or print a sign-in token for a
user and exit: ``python run.py token USER [--ttl SECONDS]``. Configuration comes from the
environment."""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402  (everything else is imported after monkey-patching)
import errno  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402

log = logging.getLogger('run')
access_log = logging.getLogger('run.access')

LOG_FORMAT = '%(asctime)s %(levelname)s %(name)s: %(message)s'
ANY_ADDRESS = ('0.0.0.0', '::', '')
# Connections the kernel holds for the server to accept (it caps this at net.core.somaxconn).
# gevent's default of 128 overflowed when a thousand clients connected at once, and each
# connection the kernel dropped waited a second for its retry.
LISTEN_BACKLOG = 4096


class RelayHandler(WebSocketHandler):
    """gevent-websocket's handler with Nagle's algorithm off, and a request log of our own.

    Socket.IO sends an event and its acknowledgement as separate small frames; with Nagle on,
    the second waits for the client's delayed TCP ACK, adding ~40 ms to every round trip.
    """

    access_level = logging.DEBUG  # INFO with the access log
    # Bytes read ahead from each connection. gevent's default of 8 KiB is held for the life of
    # every WebSocket; request lines and small frames fit in 1 KiB, and a larger read goes to
    # the socket directly.
    read_buffer = 1024
    # Seconds a read or a send on a connection may wait (set from the ping settings) until it
    # is a WebSocket: a client that stops halfway through a request cannot hold it forever.
    socket_timeout = None

    def __init__(self, sock, address, server, rfile=None):
        super().__init__(sock, address, server,
                         rfile if rfile is not None else sock.makefile('rb', self.read_buffer))

    def handle(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket.settimeout(self.socket_timeout)
        super().handle()

    def run_websocket(self):
        """Serve an upgraded connection, whose reads and writes wait without a timer.

        A timeout costs a timer at every wait, a twentieth of the server's time in echo.
        Engine.IO's pings tell when a WebSocket's client is gone, and closing it then shuts
        its socket (server/namespaces/internals.py), which ends any read or write waiting.
        """
        self.socket.settimeout(None)
        super().run_websocket()

    def log_request(self):
        """Log the request without its query string: an Engine.IO sid in it is a credential."""
        path = (self.path or '').partition('?')[0]
        status = (self._orig_status or self.status or '000').split()[0]
        took_ms = (self.time_finish - self.time_start) * 1000 if self.time_finish else 0.0
        client = self.client_address[0] if isinstance(self.client_address, tuple) else '-'
        access_log.log(self.access_level, '%s "%s %s" %s %s %.1f ms', client, self.command,
                       path, status, self.response_length or '-', took_ms)


def parse_args(argv):
    """The command line: ``--access-log``, or the ``token`` command; everything else is the
    environment's."""
    parser = argparse.ArgumentParser(
        description='Serve the Relay chat and push server, or issue a sign-in token (token).')
    parser.add_argument('--access-log', action='store_true',
                        help='log every HTTP request at INFO (as ACCESS_LOG=1 does)')
    commands = parser.add_subparsers(dest='command', metavar='{token}')
    token = commands.add_parser(
        'token', help='print a sign-in token for USER (for AUTH_REQUIRED) and exit',
        description='Print a sign-in token for USER, signed with SECRET_KEY: the client presents '
                    'it as auth {"token": ...}, the browser page as /#token=<token>.')
    token.add_argument('user', metavar='USER', help="the user's name, which is its nick")
    token.add_argument('--ttl', type=int, metavar='SECONDS',
                       help='seconds until it expires (default and at most: TOKEN_MAX_AGE)')
    return parser.parse_args(argv)


def print_token(user, ttl):
    """Print a sign-in token for ``user``; a user, ttl or configuration it cannot take is one
    line on stderr and exit code 2."""
    try:
        from config import config_from_env
        config = config_from_env()
        config.check()
    except ValueError as error:
        print(f'configuration error: {error}', file=sys.stderr)
        return 2
    from server.auth import UserTokens
    from server.errors import ClientError
    tokens = UserTokens(config.SECRET_KEY, config.TOKEN_MAX_AGE, config.MAX_NICK_LENGTH)
    try:
        token = tokens.issue(user, ttl)
    except (ClientError, ValueError) as error:
        print(f'cannot issue a token for {user!r}: {error}', file=sys.stderr)
        return 2
    print(token)
    return 0


def configure_logging(level, access):
    """Quiet by default: a line per start, stop, chat connect and disconnect at INFO."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    log.setLevel(logging.INFO)  # start and stop lines show at every LOG_LEVEL
    if access:
        RelayHandler.access_level = logging.INFO
        access_log.setLevel(logging.INFO)


def listen_error(host, port, error):
    """One line saying why the server cannot listen, and what to set instead."""
    if error.errno == errno.EADDRINUSE:
        return f'port {port} is in use; set PORT=<a free port> (PORT=0 picks one)'
    if error.errno == errno.EACCES:
        return (f'port {port} needs privileges this process lacks; '
                'set PORT=<a port above 1023> (PORT=0 picks one)')
    reason = getattr(error, 'strerror', None) or str(error)
    return f'cannot listen on HOST={host}: {reason}; set HOST=127.0.0.1 (or 0.0.0.0 for all)'


def raise_open_file_limit():
    """Raise this process's soft limit on open files to its hard limit; return the limit.

    Every connection holds a file descriptor, and the soft limit a shell or service manager
    hands down is often 1024: the 1,021st client would be refused with "too many open files",
    while the hard limit (what the administrator allows) is usually far higher.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # a sandbox that refuses it: keep what was given
            return soft
    return hard


def ready_line(host, port, interval):
    """Where to point a browser, and what it shows there."""
    browse = f'http://127.0.0.1:{port}' if host in ANY_ADDRESS else f'http://{host}:{port}'
    return (f'open {browse} in a browser: the Relay page, with a chat (join a room such as '
            f'"lobby") and a live ticker showing a new value every {interval:g} s')


def main(argv=None):
    """Serve until SIGINT or SIGTERM, then stop the ticker, close the clients and exit 0.

    A configuration the server cannot run with, or an address it cannot listen on, is one line
    on stderr and exit code 2.
    """
    args = parse_args(argv)
    if args.command == 'token':
        return print_token(args.user, args.ttl)
    try:
        # config reads the environment as it is imported, so a bad value fails right here.
        from config import config_from_env
        from server import create_app, shutdown
        config = config_from_env()
        app = create_app(config)
    except ValueError as error:
        print(f'configuration error: {error}', file=sys.stderr)
        return 2
    configure_logging(app.config['LOG_LEVEL'], args.access_log or app.config['ACCESS_LOG'])
    open_files = raise_open_file_limit()
    # The objects made at start live as long as the process: frozen, they are left out of the
    # garbage collector's full passes, which otherwise grew to 50-90 ms pauses for everyone
    # while 2,000 connections were opened.
    gc.collect()
    gc.freeze()

    host, port = app.config['HOST'], app.config['PORT']
    # Engine.IO hears from every live client (a pong, a poll) within PING_INTERVAL +
    # PING_TIMEOUT; a socket quiet for longer than that and a margin is gone.
    RelayHandler.socket_timeout = app.config['PING_INTERVAL'] + app.config['PING_TIMEOUT'] + 15
    http_server = WSGIServer((host, port), app, handler_class=RelayHandler, log=None,
                             backlog=LISTEN_BACKLOG, error_log=log)
    # gevent-websocket upgrades a WebSocket before the app sees it: a handshake the edge
    # refuses (too many connections) is answered as plain HTTP instead, with its status.
    edge = app.extensions['edge']
    http_server.pre_start_hook = lambda handler: edge.refusal(handler.environ) is not None
    try:
        http_server.init_socket()  # binds now, so that a taken port is told, not a traceback
    except OSError as error:
        print(listen_error(host, port, error), file=sys.stderr)
        shutdown(app)
        return 2
    stop_requested = Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stop_requested.set)

    http_server.start()
    log.info('serving on http://%s:%d (async_mode=%s); %s', http_server.server_host,
             http_server.server_port, config.ASYNC_MODE,
             ready_line(host, http_server.server_port, app.config['PUSH_INTERVAL']))
    if open_files < app.config['MAX_CONNECTIONS']:
        log.warning('this process may open %d files, fewer than MAX_CONNECTIONS (%d): raise '
                    'its hard limit (ulimit -Hn, systemd LimitNOFILE=) or lower MAX_CONNECTIONS',
                    open_files, app.config['MAX_CONNECTIONS'])
    stop_requested.wait()

    log.info('shutting down')
    shutdown(app, stop_listening=http_server.close, stop_serving=http_server.stop)
    log.info('stopped')
    return 0


def exit_now(code):
    """Exit without the interpreter's teardown, once everything that matters is done.

    By then the clients are gone, the store is closed and the log is flushed here; what is
    left is freeing every object of the process one by one, about 2 s after a stop with
    10,000 clients connected (a rolling restart waits for it).
    """
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == '__main__':
    exit_now(main())
