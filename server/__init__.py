"""Application factory: configuration, the Socket.IO extension, routes and namespaces."""
import functools
import secrets
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis
from flask import Flask
from gevent.threadpool import ThreadPool
from redis.backoff import NoBackoff
from redis.retry import Retry

from config import ConfigError, DevelopmentConfig
from server import http, jsonwire
from server.addresses import ConnectionLimits, parse_networks
from server.auth import UserTokens
from server.chat.sessions import SessionTokens
from server.edge import Edge, address_of
from server.log_redaction import keep_sids_out_of_logs
from server.chat.limits import RateLimiter
from server.chat.presence import Presence
from server.chat.redis_presence import RedisPresence
from server.chat.store import open_store
from server.chat.typing import TypingTracker
from server.extensions import socketio
from server.metrics import Metrics
from server.namespaces.chat import ChatLimits, ChatNamespace
from server.namespaces.internals import (IndexedManager, OrderedRedisManager,
                                         bound_unsent_output, close_every_transport,
                                         count_traffic, limit_websocket_messages,
                                         unmask_frames_in_c, watch_connections,
                                         write_websockets_directly)
from server.namespaces.replies import guard_client_events
from server.namespaces.ticker import SUBSCRIBERS, TickerNamespace
from server.sequencer import Sequencer
from server.tasks import PeriodicTask
from server.ticker import Ticker
from server.ticker_state import MemoryTickerState, RedisTickerState

CHAT_NAMESPACE = '/chat'
TICKER_NAMESPACE = '/test_conn'
TICKER_REDIS_TIMEOUT_S = 2.0
# How long a room message that reached a worker ahead of an earlier one waits for it (a
# message that never comes: its worker died between storing and publishing it), and how long
# the first message of a room this worker has not seen waits for an earlier one.
QUEUE_ORDER_HOLD_S = 3.0
QUEUE_ORDER_FIRST_HOLD_S = 0.2
# Connections to the queue's Redis one worker may open for publishing (redis-py's default of
# 100 fails the 101st emit in flight). Each is held for one round trip, so this is headroom.
QUEUE_CONNECTIONS = 1000
# How long a starting worker waits for the queue's Redis to answer before refusing to start.
QUEUE_START_TIMEOUT_S = 5.0


def create_app(config=DevelopmentConfig, overrides=None):
    """Build the app from a config class, with optional overrides (as tests pass)."""
    config.check()
    app = Flask(__name__, static_folder=str(http.CLIENT_DIR / 'static'), static_url_path='/static')
    app.config.from_object(config)
    app.config.update(overrides or {})
    if app.config['MESSAGE_QUEUE']:
        _require_answer(app.config['MESSAGE_QUEUE'])
    app.extensions['metrics'] = metrics = Metrics(allow=_networks(app.config, 'METRICS_ALLOW'))

    socketio.init_app(
        app,
        async_mode=app.config['ASYNC_MODE'],
        client_manager=_client_manager(app.config),
        json=jsonwire,
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
    keep_sids_out_of_logs(socketio.server.logger, socketio.server.eio.logger)
    connections = ConnectionLimits(
        app.config['MAX_CONNECTIONS'], app.config['MAX_CONNECTIONS_PER_ADDRESS'],
        app.config['NEW_CONNECTIONS_PER_SECOND'], app.config['NEW_CONNECTIONS_BURST'])
    socketio.server.eio.relay_address_of = connections.address_of  # for the log
    watch_connections(socketio.server,
                      lambda eio_sid, environ: connections.opened(eio_sid, address_of(environ)),
                      connections.closed)
    limiter = RateLimiter(app.config['RATE_LIMIT_PER_SECOND'], app.config['RATE_LIMIT_BURST'],
                          app.config['FLOOD_STRIKES'],
                          group_rate=app.config['ADDRESS_RATE_LIMIT_PER_SECOND'],
                          group_burst=app.config['ADDRESS_RATE_LIMIT_BURST'],
                          group_of=connections.group_of)
    guard_client_events(socketio.server, limiter,
                        max_attachment_bytes=app.config['MAX_PAYLOAD_BYTES'],
                        garbage_closed=metrics.garbage_disconnects.inc)
    unmask_frames_in_c()
    write_websockets_directly()
    bound_unsent_output(app.config['MAX_UNSENT_BYTES'], app.config['MAX_UNSENT_PACKETS'])
    count_traffic(socketio.server, metrics)
    # Engine.IO's own framing adds a byte or two to a Socket.IO packet of MAX_PAYLOAD_BYTES.
    limit_websocket_messages(app.config['MAX_PAYLOAD_BYTES'] + 16)
    app.register_blueprint(http.bp)
    # Outside Flask-SocketIO's middleware: it sees every request.
    app.wsgi_app = app.extensions['edge'] = Edge(
        app.wsgi_app, trusted_proxies=_networks(app.config, 'TRUSTED_PROXIES'),
        limits=connections, on_refusal=metrics.connection_refused)

    users = None  # anyone may connect, unless AUTH_REQUIRED
    if app.config['AUTH_REQUIRED']:
        users = UserTokens(app.config['SECRET_KEY'], app.config['TOKEN_MAX_AGE'],
                           app.config['MAX_NICK_LENGTH'])
    app.extensions['ticker'] = ticker = _make_ticker(app.config, metrics)
    app.extensions['chat'] = chat = _make_chat(app.config, app.root_path, limiter, users,
                                               metrics)
    chat.count_into(metrics)
    socketio.on_namespace(chat)
    chat.start_tasks()
    ticker_namespace = TickerNamespace(TICKER_NAMESPACE, ticker, limiter, users)
    ticker_namespace.count_into(metrics)
    socketio.on_namespace(ticker_namespace)
    metrics.watch_clients(socketio.server, [CHAT_NAMESPACE, TICKER_NAMESPACE])
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
    close_every_transport(socketio.server)
    socketio.server.shutdown()
    if stop_serving is not None:
        stop_serving(timeout)
    app.extensions['chat'].store.close()
    app.extensions['chat'].presence.close()


def _networks(config, name):
    try:
        return parse_networks(config[name])
    except ValueError as error:
        raise ConfigError(f'{name}: {error}') from None


def _require_answer(url):
    """Refuse to start on a Redis that does not answer, which else would only fill the log.

    It is given a few seconds: a Redis started beside the workers may still be on its way.
    """
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1,
                                  retry=Retry(NoBackoff(), 0))
    deadline = time.monotonic() + QUEUE_START_TIMEOUT_S
    try:
        while True:
            try:
                client.ping()
                return
            except redis.RedisError as error:
                wrong_password = isinstance(error, redis.AuthenticationError)
                if wrong_password or time.monotonic() >= deadline:
                    raise ConfigError(f'MESSAGE_QUEUE {_without_password(url)} does not answer '
                                      f'({type(error).__name__}: {error}); start Redis there '
                                      f'or fix the URL') from error
                time.sleep(0.25)
    finally:
        client.close()


def _without_password(url):
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f':{parts.password}@', ':***@', 1)).geturl()


def _client_manager(config):
    """With a Redis queue, python-socketio's Redis manager, putting room messages in id order;
    alone, python-socketio's own; either way remembering each client's rooms."""
    if not config['MESSAGE_QUEUE']:
        return IndexedManager()
    return OrderedRedisManager(config['MESSAGE_QUEUE'], channel='flask-socketio',
                               redis_options={'max_connections': QUEUE_CONNECTIONS},
                               numbered=_numbered_room_message,
                               sequencer=Sequencer(QUEUE_ORDER_HOLD_S,
                                                   QUEUE_ORDER_FIRST_HOLD_S))


def _numbered_room_message(message):
    """Return ``(room, id)`` for an emit of a room message, the one emit whose order clients
    rely on (ids rise by one per room); None for any other."""
    if message.get('event') != 'chat_message' or message.get('namespace') != CHAT_NAMESPACE:
        return None
    try:
        return message['room'], int(message['data'][0]['id'])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _periodic(name, interval, action, quiet=False, on_lag=None):
    """Make a background task of the running async mode (gevent, or threads in tests)."""
    return PeriodicTask(name, interval, action, socketio.start_background_task,
                        socketio.server.eio.create_event, quiet=quiet, on_lag=on_lag)


def _make_chat(config, app_root, limiter, users, metrics):
    project_root = Path(app_root).parent
    # SQLite blocks its caller: under gevent its calls run in one OS thread of their own (one
    # at a time, so they need no lock) and the loop serves everyone else meanwhile; on the
    # test threads they run inline. PostgreSQL (psycopg) yields to gevent by itself.
    run_blocking = ThreadPool(1).apply if config['ASYNC_MODE'] == 'gevent' else None
    return ChatNamespace(
        CHAT_NAMESPACE,
        presence=_make_presence(config),
        store=metrics.timed_store(open_store(config['DATABASE_URL'], project_root,
                                             run_blocking=run_blocking)),
        typing=TypingTracker(config['TYPING_TIMEOUT']),
        limiter=limiter,
        limits=ChatLimits.from_config(config),
        periodic=_periodic,
        session_tokens=SessionTokens(config['SECRET_KEY']),
        users=users,
        grace=config['RECONNECT_GRACE'],
        heartbeat=config['WORKER_HEARTBEAT'] if config['MESSAGE_QUEUE'] else None,
    )


def _make_presence(config):
    """The registry of who is where: in Redis when workers share a queue, else in-process."""
    caps = {'max_rooms_per_client': config['MAX_ROOMS_PER_CLIENT'],
            'max_room_members': config['MAX_ROOM_MEMBERS']}
    if not config['MESSAGE_QUEUE']:
        return Presence(**caps)
    # A worker missing three heartbeats in a row is given up for dead by the others.
    return RedisPresence(config['MESSAGE_QUEUE'], worker_id=secrets.token_hex(8),
                         heartbeat_ttl=3 * config['WORKER_HEARTBEAT'], **caps)


def _make_ticker(config, metrics):
    def publish(value):
        socketio.emit('server_response', value, namespace=TICKER_NAMESPACE, to=SUBSCRIBERS)
        metrics.ticker_ticks.inc()

    periodic = functools.partial(_periodic, on_lag=metrics.ticker_lag.observe)
    return Ticker(config['PUSH_INTERVAL'], publish, periodic, _ticker_state(config))


def _ticker_state(config):
    """Keep the ticker's state in Redis when workers share a Redis queue, else in memory."""
    if not config['MESSAGE_QUEUE']:
        return MemoryTickerState(config['TICKER_HISTORY'])
    # Timeouts, because a Redis that hangs must not hang the tick; no retries, because a tick
    # that fails is simply tried again at the next one, and a retried script could draw twice.
    client = redis.Redis.from_url(config['MESSAGE_QUEUE'], decode_responses=True,
                                  socket_timeout=TICKER_REDIS_TIMEOUT_S,
                                  socket_connect_timeout=TICKER_REDIS_TIMEOUT_S,
                                  retry=Retry(NoBackoff(), 0))
    return RedisTickerState(client, config['TICKER_HISTORY'])
