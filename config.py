"""Configuration classes, each value read from the environment (and an optional ``.env``).

``APP_ENV`` picks the class: ``development`` (the default), ``production`` or ``testing``.
Every variable is documented in the README's configuration table.
"""
import os
from pathlib import Path

from dotenv import load_dotenv

load_dotenv()

DEVELOPMENT_SECRET = 'development-only-secret-do-not-deploy'
PROJECT_ROOT = Path(__file__).resolve().parent
SQLITE_PREFIX = 'sqlite:///'
# History's default home; the only folder the server creates for it (make clean keeps it).
DEFAULT_DATABASE_URL = f'{SQLITE_PREFIX}instance/chat.db'


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


def env_str(name, default=None):
    """Return the variable as a string, or ``default`` when unset or empty."""
    value = os.environ.get(name, '').strip()
    return value or default


def env_int(name, default, minimum=None, maximum=None):
    """Return the variable as an int, refusing garbage and values out of bounds."""
    return _env_number(name, default, int, minimum, maximum)


def env_float(name, default, minimum=None):
    """Return the variable as a float, refusing garbage and values below ``minimum``."""
    return _env_number(name, default, float, minimum)


def env_bool(name, default=False):
    """Return the variable as a bool: 1/true/yes/on or 0/false/no/off, any case."""
    raw = env_str(name)
    if raw is None:
        return default
    if raw.lower() in ('1', 'true', 'yes', 'on'):
        return True
    if raw.lower() in ('0', 'false', 'no', 'off'):
        return False
    raise ConfigError(f'{name} must be 1 or 0 (true or false), got {raw!r}')


def _env_number(name, default, kind, minimum, maximum=None):
    raw = env_str(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f'{name} must be a {kind.__name__}, got {raw!r}') from None
    if minimum is not None and value < minimum:
        raise ConfigError(f'{name} must be at least {minimum}, got {value}')
    if maximum is not None and value > maximum:
        raise ConfigError(f'{name} must be at most {maximum}, got {value}')
    return value


def env_choice(name, default, choices):
    """Return the variable, upper-cased, if it is one of ``choices``."""
    value = env_str(name, default).upper()
    if value not in choices:
        raise ConfigError(f'{name} must be one of {", ".join(choices)}, got {value!r}')
    return value


def env_list(name):
    """Return a comma-separated variable as a list of its non-empty items."""
    return [item.strip() for item in (env_str(name) or '').split(',') if item.strip()]


class Config:
    """Settings shared by every environment."""

    SECRET_KEY = env_str('SECRET_KEY')
    HOST = env_str('HOST', '127.0.0.1')
    PORT = env_int('PORT', 5000, minimum=0, maximum=65535)
    LOG_LEVEL = env_choice('LOG_LEVEL', 'INFO', ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'))
    # One INFO line per HTTP request (path without its query string), as run.py --access-log.
    ACCESS_LOG = env_bool('ACCESS_LOG')

    # Socket.IO transport: gevent in every real deployment; a Redis URL joins several workers.
    ASYNC_MODE = 'gevent'
    MESSAGE_QUEUE = env_str('MESSAGE_QUEUE')
    # Seconds a gone client's nick and rooms are kept for its session to come back unannounced.
    RECONNECT_GRACE = env_float('RECONNECT_GRACE', 5.0, minimum=0.0)
    # With MESSAGE_QUEUE: seconds between a worker's heartbeats; three missed, it is dead.
    WORKER_HEARTBEAT = env_float('WORKER_HEARTBEAT', 2.0, minimum=0.1)
    CORS_ALLOWED_ORIGINS = env_list('CORS_ALLOWED_ORIGINS')
    # Addresses and networks whose requests to /metrics are answered; everyone else gets 404.
    METRICS_ALLOW = env_list('METRICS_ALLOW') or ['127.0.0.1', '::1']
    # Whole seconds: Engine.IO tells clients the interval truncated to whole seconds, and a
    # client told less than the server waits gives up on a healthy connection.
    PING_INTERVAL = env_int('PING_INTERVAL', 25, minimum=1)
    PING_TIMEOUT = env_float('PING_TIMEOUT', 20.0, minimum=0.1)
    MAX_PAYLOAD_BYTES = env_int('MAX_PAYLOAD_BYTES', 64 * 1024, minimum=1024)
    # What one connection may leave unread (queued for it, not yet taken by its transport)
    # before it is closed as a slow consumer: a history page of MAX_HISTORY_PAGE long
    # messages is about half a megabyte.
    MAX_UNSENT_BYTES = env_int('MAX_UNSENT_BYTES', 2 * 1024 * 1024, minimum=64 * 1024)
    MAX_UNSENT_PACKETS = env_int('MAX_UNSENT_PACKETS', 1000, minimum=10)

    # /test_conn ticker.
    PUSH_INTERVAL = env_float('PUSH_INTERVAL', 5.0, minimum=0.01)
    TICKER_HISTORY = env_int('TICKER_HISTORY', 60, minimum=1)

    # /chat history: sqlite:///… (a relative path is from the project's root) or postgresql://…
    DATABASE_URL = env_str('DATABASE_URL', DEFAULT_DATABASE_URL)
    HISTORY_LIMIT = env_int('HISTORY_LIMIT', 50, minimum=0)
    MAX_HISTORY_PAGE = env_int('MAX_HISTORY_PAGE', 200, minimum=1)

    # Sign-in: with AUTH_REQUIRED every connect must present a sign-in token (server/auth.py)
    # younger than TOKEN_MAX_AGE seconds.
    AUTH_REQUIRED = env_bool('AUTH_REQUIRED')
    TOKEN_MAX_AGE = env_int('TOKEN_MAX_AGE', 86400, minimum=1)

    # /chat limits.
    MAX_MESSAGE_LENGTH = env_int('MAX_MESSAGE_LENGTH', 2000, minimum=1)
    MAX_ROOM_NAME_LENGTH = env_int('MAX_ROOM_NAME_LENGTH', 64, minimum=1)
    MAX_NICK_LENGTH = env_int('MAX_NICK_LENGTH', 32, minimum=1)
    MAX_ROOMS_PER_CLIENT = env_int('MAX_ROOMS_PER_CLIENT', 20, minimum=1)
    MAX_ROOM_MEMBERS = env_int('MAX_ROOM_MEMBERS', 500, minimum=1)
    TYPING_TIMEOUT = env_float('TYPING_TIMEOUT', 5.0, minimum=0.1)
    RATE_LIMIT_PER_SECOND = env_float('RATE_LIMIT_PER_SECOND', 10.0, minimum=0.1)
    RATE_LIMIT_BURST = env_int('RATE_LIMIT_BURST', 20, minimum=1)
    FLOOD_STRIKES = env_int('FLOOD_STRIKES', 20, minimum=1)

    # Per client address (an IPv6 address's /64) across its connections, and per process.
    # Behind a reverse proxy, list it in TRUSTED_PROXIES (addresses or CIDR blocks) so that the
    # client's address is read from its X-Forwarded-For; from anyone else that header is ignored.
    TRUSTED_PROXIES = env_list('TRUSTED_PROXIES')
    MAX_CONNECTIONS = env_int('MAX_CONNECTIONS', 20000, minimum=1)
    MAX_CONNECTIONS_PER_ADDRESS = env_int('MAX_CONNECTIONS_PER_ADDRESS', 50, minimum=1)
    NEW_CONNECTIONS_PER_SECOND = env_float('NEW_CONNECTIONS_PER_SECOND', 5.0, minimum=0.01)
    NEW_CONNECTIONS_BURST = env_int('NEW_CONNECTIONS_BURST', 30, minimum=1)
    ADDRESS_RATE_LIMIT_PER_SECOND = env_float('ADDRESS_RATE_LIMIT_PER_SECOND', 100.0,
                                              minimum=0.1)
    ADDRESS_RATE_LIMIT_BURST = env_int('ADDRESS_RATE_LIMIT_BURST', 200, minimum=1)

    @classmethod
    def check(cls):
        """Raise ConfigError when this configuration must not start."""
        if cls.MESSAGE_QUEUE and not cls.MESSAGE_QUEUE.startswith(('redis://', 'rediss://')):
            raise ConfigError('MESSAGE_QUEUE must be a redis:// or rediss:// URL, '
                              f'got {cls.MESSAGE_QUEUE!r}')
        check_database_folder(cls.DATABASE_URL)


class DevelopmentConfig(Config):
    """Local development: the only class allowed a built-in secret."""

    SECRET_KEY = Config.SECRET_KEY or DEVELOPMENT_SECRET


class TestingConfig(DevelopmentConfig):
    """Fast handler tests: synchronous threads instead of gevent, no message queue."""

    TESTING = True
    ASYNC_MODE = 'threading'
    MESSAGE_QUEUE = None
    DATABASE_URL = 'sqlite:///:memory:'
    PUSH_INTERVAL = 3600.0
    RECONNECT_GRACE = 0.0  # handler tests see leaves at once; their own tests set a grace
    AUTH_REQUIRED = False  # the tests of sign-in turn it on themselves


class ProductionConfig(Config):
    """Deployment: refuses to start without a real secret."""

    @classmethod
    def check(cls):
        super().check()
        if not cls.SECRET_KEY or cls.SECRET_KEY == DEVELOPMENT_SECRET:
            raise ConfigError('SECRET_KEY must be set to a private value when APP_ENV=production')


def check_database_folder(url):
    """Refuse a SQLite file whose folder does not exist; only the default one is created.

    A typo in a path would otherwise start the server on a new, empty history somewhere else.
    """
    if not url.startswith(SQLITE_PREFIX) or url == DEFAULT_DATABASE_URL:
        return
    path = url[len(SQLITE_PREFIX):]
    if path in ('', ':memory:'):
        return
    folder = (PROJECT_ROOT / path).parent
    if not folder.is_dir():
        raise ConfigError(f'DATABASE_URL names a file in {folder}, a folder that does not exist; '
                          'create it, or leave DATABASE_URL unset for instance/chat.db')


CONFIGS = {
    'development': DevelopmentConfig,
    'testing': TestingConfig,
    'production': ProductionConfig,
}


def config_from_env():
    """Return the configuration class named by ``APP_ENV``."""
    name = env_str('APP_ENV', 'development').lower()
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigError(f'APP_ENV must be one of {", ".join(CONFIGS)}, got {name!r}') from None
