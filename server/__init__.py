"""Application factory: configuration, the Socket.IO extension, routes and namespaces."""
from pathlib import Path

from flask import Flask

from config import DevelopmentConfig
from server import http
from server.chat.limits import RateLimiter
from server.chat.presence import Presence
from server.chat.store import MessageStore, sqlite_path
from server.chat.typing import TypingTracker
from server.extensions import socketio
from server.namespaces.chat import ChatLimits, ChatNamespace
from server.namespaces.connections import close_transport
from server.namespaces.replies import guard_client_events
from server.namespaces.ticker import SUBSCRIBERS, TickerNamespace
from server.tasks import PeriodicTask
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
        # Each connection's events run in its own reader greenlet, in order, one at a time:
        # a client sending faster than it is served is slowed by TCP backpressure instead of
        # piling up a greenlet per event (a flood would otherwise eat memory and everyone's
        # latency). Handlers therefore never wait on the client that sent the event.
        async_handlers=False,
    )
    guard_client_events(socketio.server)
    app.register_blueprint(http.bp)

    app.extensions['ticker'] = ticker = _make_ticker(app.config)
    app.extensions['chat'] = chat = _make_chat(app.config, app.root_path)
    socketio.on_namespace(chat)
    socketio.on_namespace(TickerNamespace(TICKER_NAMESPACE, ticker))
    return app


def shutdown(app, stop_listening=None, stop_serving=None, timeout=5.0):
    """Stop taking connections, stop background work, drop every client, then the store.

    ``stop_listening()`` closes the listening socket first, so that no client reconnects to a
    server on its way out. Clients then see their connection end as a network failure would,
    never a kick, so every Socket.IO client reconnects by itself, to the next server.
    ``stop_serving(timeout)`` stops the web server before the store closes, so no request in
    flight finds the database gone.
    """
    if stop_listening is not None:
        stop_listening()
    app.extensions['ticker'].stop(timeout)
    app.extensions['chat'].stop_tasks(timeout)
    for eio_sid in list(socketio.server.eio.sockets):
        close_transport(socketio.server, eio_sid, lost=True)
    socketio.server.shutdown()
    if stop_serving is not None:
        stop_serving(timeout)
    app.extensions['chat'].store.close()


def _periodic(name, interval, action):
    """Make a background task of the running async mode (gevent, or threads in tests)."""
    return PeriodicTask(name, interval, action, socketio.start_background_task,
                        socketio.server.eio.create_event)


def _make_chat(config, app_root):
    project_root = Path(app_root).parent
    return ChatNamespace(
        CHAT_NAMESPACE,
        presence=Presence(),
        store=MessageStore(sqlite_path(config['DATABASE_URL'], project_root)),
        typing=TypingTracker(config['TYPING_TIMEOUT']),
        limiter=RateLimiter(config['RATE_LIMIT_PER_SECOND'], config['RATE_LIMIT_BURST'],
                            config['FLOOD_STRIKES']),
        limits=ChatLimits.from_config(config),
        periodic=_periodic,
    )


def _make_ticker(config):
    def publish(value):
        socketio.emit('server_response', value, namespace=TICKER_NAMESPACE, to=SUBSCRIBERS)

    return Ticker(config['PUSH_INTERVAL'], publish, _periodic,
                  history_size=config['TICKER_HISTORY'])
