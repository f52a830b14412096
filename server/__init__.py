"""Application factory: configuration, the Socket.IO extension, routes and namespaces."""
from flask import Flask

from config import DevelopmentConfig
from server import http
from server.chat.history import MemoryHistory
from server.chat.presence import Presence
from server.extensions import socketio
from server.namespaces.chat import ChatLimits, ChatNamespace
from server.namespaces.replies import track_ack_requests
from server.namespaces.ticker import SUBSCRIBERS, TickerNamespace
from server.ticker import Ticker

CHAT_NAMESPACE = '/chat'
TICKER_NAMESPACE = '/test_conn'


def create_app(config=DevelopmentConfig, overrides=None):
    """Build the app from a config class, with optional overrides (as tests pass)."""
    config.check()
    app = Flask(__name__, static_folder=str(http.CLIENT_DIR / 'static'), static_url_path='/static')
    app.config.from_object(config)
    app.config.update(overrides or {})

    socketio.init_app(
        app,
        async_mode=app.config['ASYNC_MODE'],
        message_queue=app.config['MESSAGE_QUEUE'],
        cors_allowed_origins=app.config['CORS_ALLOWED_ORIGINS'] or None,
        ping_interval=app.config['PING_INTERVAL'],
        ping_timeout=app.config['PING_TIMEOUT'],
        max_http_buffer_size=app.config['MAX_PAYLOAD_BYTES'],
        namespaces=[CHAT_NAMESPACE, TICKER_NAMESPACE],
    )
    track_ack_requests(socketio.server)
    app.register_blueprint(http.bp)

    app.extensions['ticker'] = ticker = _make_ticker(app.config)
    socketio.on_namespace(ChatNamespace(
        CHAT_NAMESPACE,
        presence=Presence(),
        history=MemoryHistory(keep=app.config['HISTORY_LIMIT']),
        limits=ChatLimits.from_config(app.config),
    ))
    socketio.on_namespace(TickerNamespace(TICKER_NAMESPACE, ticker))
    return app


def shutdown(app, timeout=5.0):
    """Stop the ticker and close every client's connection, so they reconnect elsewhere.

    Each Engine.IO socket is closed without waiting for its queue to drain: the blocking
    ``eio.disconnect()`` would wait forever on a long-polling client that never polls again.
    Clients see a closed transport (not a server kick), so they reconnect on their own.
    """
    app.extensions['ticker'].stop(timeout)
    eio = socketio.server.eio
    for socket in list(eio.sockets.values()):
        socket.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
    eio.sockets.clear()
    socketio.server.shutdown()


def _make_ticker(config):
    def publish(value):
        socketio.emit('server_response', value, namespace=TICKER_NAMESPACE, to=SUBSCRIBERS)

    return Ticker(
        interval=config['PUSH_INTERVAL'],
        publish=publish,
        spawn=socketio.start_background_task,
        new_event=socketio.server.eio.create_event,
        history_size=config['TICKER_HISTORY'],
    )
