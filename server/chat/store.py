"""Message history: the records every backend returns, its one error, and the factory.

Every message is committed before its sender hears it was sent. Room messages get ids that
increase by exactly one per room; a ``client_id`` makes a send idempotent, so a client that
retries after a lost acknowledgement stores its message once. Two backends keep the same
promises behind the same methods (``append``, ``append_direct``, ``direct_since``, ``recent``,
``before``, ``since``, ``close``): SQLite for one machine (``store_sqlite``) and PostgreSQL for
workers on several (``store_postgres``). ``open_store`` picks one by the URL's scheme.
"""
import dataclasses
from pathlib import Path

from server.chat import sessions
from server.clock import now_ms
from server.errors import ClientError

SQLITE_PREFIX = 'sqlite:///'
POSTGRES_SCHEMES = ('postgresql://', 'postgres://')


class StoreUnavailable(ClientError):
    """The history database cannot be reached right now; nothing was stored, try again."""

    def __init__(self):
        super().__init__('unavailable', 'the message history is unavailable; try again shortly')


@dataclasses.dataclass(frozen=True)
class Message:
    """One room message, as ``chat_message`` carries it; the sender's session key stays here."""

    id: int
    room: str
    nick: str
    text: str
    ts: int
    sender_key: str | None = None

    def to_dict(self):
        """Return the ``chat_message`` payload: the sender's user id, never its session key."""
        return {'id': self.id, 'room': self.room, 'nick': self.nick,
                'user_id': _user_id(self.sender_key), 'text': self.text, 'ts': self.ts}


@dataclasses.dataclass(frozen=True)
class DirectMessage:
    """One direct message between two sessions, with the nicks they had then."""

    id: int
    sender: str
    recipient: str
    text: str
    ts: int
    sender_key: str | None = None
    recipient_key: str | None = None

    def to_dict(self):
        """Return the ``direct_message`` payload, with both ends' user ids."""
        return {'id': self.id, 'from': self.sender, 'to': self.recipient,
                'from_id': _user_id(self.sender_key), 'to_id': _user_id(self.recipient_key),
                'text': self.text, 'ts': self.ts}


def _user_id(session_key):
    return sessions.user_id(session_key) if session_key else None


ROOM_COLUMNS = 'id, room, nick, text, ts, sender_key'
DIRECT_COLUMNS = 'id, sender, recipient, text, ts, sender_key, recipient_key'
_LAST_ID = 2 ** 63 - 1


class HistoryReads:
    """The reading half of a store: the same SQL on every backend but for its parameter mark.

    A backend sets ``PARAM`` (``?`` or ``%s``) and provides ``_query(sql, params)``.
    """

    PARAM = '?'

    def reachable(self):
        """Return whether the database answers a query now."""
        try:
            self._query('SELECT 1', ())
        except StoreUnavailable:
            return False
        return True

    def direct_since(self, session_key, since_id, limit):
        """Return up to ``limit`` direct messages to or from a session newer than ``since_id``."""
        rows = self._select(
            f'SELECT {DIRECT_COLUMNS} FROM direct_messages '
            'WHERE id > ? AND (sender_key = ? OR recipient_key = ?) ORDER BY id LIMIT ?',
            (since_id, session_key, session_key, limit + 1))
        return Page([DirectMessage(*row) for row in rows[:limit]], more=len(rows) > limit)

    def stored_direct(self, sender_key, client_id):
        """Return the direct message a session sent with ``client_id``, or None."""
        rows = self._select(f'SELECT {DIRECT_COLUMNS} FROM direct_messages '
                            'WHERE sender_key = ? AND client_id = ?', (sender_key, client_id))
        return DirectMessage(*rows[0]) if rows else None

    def direct_before(self, session_key, before_id, limit):
        """Return up to ``limit`` direct messages to or from a session older than ``before_id``
        (the newest ones when it is None), oldest first."""
        rows = self._select(
            f'SELECT {DIRECT_COLUMNS} FROM direct_messages '
            'WHERE id < ? AND (sender_key = ? OR recipient_key = ?) ORDER BY id DESC LIMIT ?',
            (before_id if before_id is not None else _LAST_ID, session_key, session_key,
             limit + 1))
        messages = [DirectMessage(*row) for row in reversed(rows[:limit])]
        return Page(messages, more=len(rows) > limit)

    def recent(self, room, limit):
        """Return the room's last ``limit`` messages."""
        return self._backwards(room, None, limit)

    def before(self, room, before_id, limit):
        """Return up to ``limit`` messages older than ``before_id``."""
        return self._backwards(room, before_id, limit)

    def since(self, room, since_id, limit):
        """Return up to ``limit`` messages newer than ``since_id``, the oldest of them first."""
        rows = self._select(
            f'SELECT {ROOM_COLUMNS} FROM room_messages WHERE room = ? AND id > ? '
            'ORDER BY id LIMIT ?', (room, since_id, limit + 1))
        return Page([Message(*row) for row in rows[:limit]], more=len(rows) > limit)

    def _backwards(self, room, before_id, limit):
        rows = self._select(
            f'SELECT {ROOM_COLUMNS} FROM room_messages WHERE room = ? AND id < ? '
            'ORDER BY id DESC LIMIT ?',
            (room, before_id if before_id is not None else _LAST_ID, limit + 1))
        messages = [Message(*row) for row in reversed(rows[:limit])]
        return Page(messages, more=len(rows) > limit)

    def _select(self, sql, params):
        return self._query(sql.replace('?', self.PARAM), params)


@dataclasses.dataclass(frozen=True)
class Page:
    """Messages oldest first, and whether more lie beyond them in the direction asked."""

    messages: list
    more: bool


def sqlite_path(database_url, root):
    """Return the file path (or ``:memory:``) of a ``sqlite:///`` URL; relative paths use root."""
    if not database_url.startswith(SQLITE_PREFIX):
        raise ValueError(f'DATABASE_URL must start with {SQLITE_PREFIX}, got {database_url!r}')
    path = database_url[len(SQLITE_PREFIX):]
    if path in ('', ':memory:'):
        return ':memory:'
    return str(Path(root, path))


def open_store(database_url, root, run_blocking=None, clock=now_ms):
    """Open the store a ``DATABASE_URL`` names: ``sqlite:///…`` or ``postgresql://…``.

    ``run_blocking(call)`` runs SQLite's blocking calls (a thread pool under gevent); by default
    they run inline, one at a time. PostgreSQL needs none: psycopg waits on its socket through
    the (monkey-patched) ``select`` module, so under gevent a query yields to other greenlets.
    """
    # Imported here, not at the top: each backend imports this module's records, and psycopg
    # must be imported after gevent's monkey-patching to find the cooperative wait.
    if database_url.startswith(POSTGRES_SCHEMES):
        from server.chat.store_postgres import PostgresMessageStore
        return PostgresMessageStore(database_url, clock=clock)
    if database_url.startswith(SQLITE_PREFIX):
        from server.chat.store_sqlite import SqliteMessageStore
        return SqliteMessageStore(sqlite_path(database_url, root), clock=clock,
                                  run_blocking=run_blocking)
    # Only the scheme is echoed: the rest of a URL may hold a password.
    scheme = database_url.partition(':')[0]
    raise ValueError(f'DATABASE_URL must start with {SQLITE_PREFIX} or postgresql://, '
                     f'got {scheme!r}')
