"""Start the server on gevent: ``python run.py``. Configuration comes from the environment."""
from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402  (everything else is imported after monkey-patching)
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402
from geventwebsocket.handler import WebSocketHandler  # noqa: E402

log = logging.getLogger('run')


class NoDelayWebSocketHandler(WebSocketHandler):
    """gevent-websocket's handler with Nagle's algorithm off on each connection.

    Socket.IO sends an event and its acknowledgement as separate small frames; with Nagle on,
    the second waits for the client's delayed TCP ACK, adding ~40 ms to every round trip.
    """

    def handle(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()


def main():
    """Serve until SIGINT or SIGTERM, then stop the ticker, close the clients and exit 0."""
    try:
        # config reads the environment as it is imported, so a bad value fails right here.
        from config import config_from_env
        from server import create_app, shutdown
        config = config_from_env()
        app = create_app(config)
    except ValueError as error:
        print(f'configuration error: {error}', file=sys.stderr)
        return 2
    logging.basicConfig(level=app.config['LOG_LEVEL'],
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    log.setLevel(logging.INFO)  # start and stop lines show at every LOG_LEVEL

    http_server = WSGIServer((app.config['HOST'], app.config['PORT']), app,
                             handler_class=NoDelayWebSocketHandler, log=None, error_log=log)
    stop_requested = Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(signum, stop_requested.set)

    http_server.start()
    log.info('serving on http://%s:%d (async_mode=%s)',
             http_server.server_host, http_server.server_port, config.ASYNC_MODE)
    stop_requested.wait()

    log.info('shutting down')
    shutdown(app, stop_listening=http_server.close, stop_serving=http_server.stop)
    log.info('stopped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
