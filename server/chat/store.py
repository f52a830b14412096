"""Message history in SQLite: every message is committed before its sender hears it was sent.

Room messages get ids that increase by one per room; a ``client_id`` makes a send idempotent, so
a client that retries after a lost acknowledgement stores its message once. The database runs in
WAL mode with ``synchronous=NORMAL``: a committed message survives the process being killed or
restarted; only an operating-system crash or power cut may lose the last commits.
"""
import contextlib
import dataclasses
import sqlite3
import threading
from pathlib import Path

from server.clock import now_ms

# Each step brings the database from the version before it (PRAGMA user_version) to its own.
MIGRATIONS = [
    """
CREATE TABLE IF NOT EXISTS room_messages (
    room      TEXT    NOT NULL,
    id        INTEGER NOT NULL,
    nick      TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    ts        INTEGER NOT NULL,
    client_id TEXT,
    PRIMARY KEY (room, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS room_messages_client_id
    ON room_messages (room, client_id) WHERE client_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS direct_messages (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    sender    TEXT    NOT NULL,
    recipient TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    ts        INTEGER NOT NULL
);
""",
    # Direct messages belong to the sessions at both ends, and may be retried idempotently.
    """
ALTER TABLE direct_messages ADD COLUMN sender_key TEXT;
ALTER TABLE direct_messages ADD COLUMN recipient_key TEXT;
ALTER TABLE direct_messages ADD COLUMN client_id TEXT;
CREATE UNIQUE INDEX direct_messages_client_id
    ON direct_messages (sender_key, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX direct_messages_sender_key ON direct_messages (sender_key, id);
CREATE INDEX direct_messages_recipient_key ON direct_messages (recipient_key, id);
""",
    # A room message's client_id is the sender's: another session reusing it stores its own.
    """
ALTER TABLE room_messages ADD COLUMN sender_key TEXT;
DROP INDEX room_messages_client_id;
CREATE UNIQUE INDEX room_messages_client_id
    ON room_messages (room, sender_key, client_id) WHERE client_id IS NOT NULL;
""",
]

_ROOM_COLUMNS = 'id, room, nick, text, ts'
_DIRECT_COLUMNS = 'id, sender, recipient, text, ts'


@dataclasses.dataclass(frozen=True)
class Message:
    """One room message, as ``chat_message`` carries it."""

    id: int
    room: str
    nick: str
    text: str
    ts: int

    def to_dict(self):
        """Return the ``chat_message`` payload."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class DirectMessage:
    """One direct message between two nicks."""

    id: int
    sender: str
    recipient: str
    text: str
    ts: int

    def to_dict(self):
        """Return the ``direct_message`` payload."""
        return {'id': self.id, 'from': self.sender, 'to': self.recipient,
                'text': self.text, 'ts': self.ts}


@dataclasses.dataclass(frozen=True)
class Page:
    """Messages oldest first, and whether more lie beyond them in the direction asked."""

    messages: list
    more: bool


def sqlite_path(database_url, root):
    """Return the file path (or ``:memory:``) of a ``sqlite:///`` URL; relative paths use root."""
    prefix = 'sqlite:///'
    if not database_url.startswith(prefix):
        raise ValueError(f'DATABASE_URL must start with {prefix}, got {database_url!r}')
    path = database_url[len(prefix):]
    if path in ('', ':memory:'):
        return ':memory:'
    return str(Path(root, path))


class MessageStore:
    """Room and direct messages in one SQLite database, safe to share between processes."""

    def __init__(self, path, clock=now_ms):
        if path != ':memory:':
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=10)
        self._db.execute('PRAGMA journal_mode=WAL')
        self._db.execute('PRAGMA synchronous=NORMAL')
        self._migrate()

    def _migrate(self):
        with self._transaction():
            (version,) = self._db.execute('PRAGMA user_version').fetchone()
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(';')):
                    self._db.execute(statement)
                self._db.execute(f'PRAGMA user_version = {number}')

    def close(self):
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def append(self, room, nick, text, sender_key=None, client_id=None):
        """Store a room message under the room's next id; return ``(message, duplicate)``.

        When the sender's session already stored this ``client_id`` in the room, nothing is
        written and the stored message is returned with ``duplicate`` true.
        """
        with self._lock, self._transaction():
            if client_id is not None:
                row = self._db.execute(
                    f'SELECT {_ROOM_COLUMNS} FROM room_messages '
                    'WHERE room = ? AND sender_key IS ? AND client_id = ?',
                    (room, sender_key, client_id)).fetchone()
                if row:
                    return Message(*row), True
            (next_id,) = self._db.execute(
                'SELECT COALESCE(MAX(id), 0) + 1 FROM room_messages WHERE room = ?',
                (room,)).fetchone()
            message = Message(next_id, room, nick, text, self._clock())
            self._db.execute(
                'INSERT INTO room_messages (room, id, nick, text, ts, sender_key, client_id) '
                'VALUES (?, ?, ?, ?, ?, ?, ?)',
                (room, message.id, nick, text, message.ts, sender_key, client_id))
        return message, False

    def append_direct(self, sender, recipient, text, sender_key, recipient_key, client_id=None):
        """Store a direct message between two sessions; return ``(message, duplicate)``."""
        ts = self._clock()
        with self._lock, self._transaction():
            if client_id is not None:
                row = self._db.execute(
                    f'SELECT {_DIRECT_COLUMNS} FROM direct_messages '
                    'WHERE sender_key = ? AND client_id = ?', (sender_key, client_id)).fetchone()
                if row:
                    return DirectMessage(*row), True
            cursor = self._db.execute(
                'INSERT INTO direct_messages '
                '(sender, recipient, text, ts, sender_key, recipient_key, client_id) '
                'VALUES (?, ?, ?, ?, ?, ?, ?)',
                (sender, recipient, text, ts, sender_key, recipient_key, client_id))
        return DirectMessage(cursor.lastrowid, sender, recipient, text, ts), False

    def direct_since(self, session_key, since_id, limit):
        """Return up to ``limit`` direct messages to or from a session newer than ``since_id``."""
        rows = self._query(
            f'SELECT {_DIRECT_COLUMNS} FROM direct_messages '
            'WHERE id > ? AND (sender_key = ? OR recipient_key = ?) ORDER BY id LIMIT ?',
            (since_id, session_key, session_key, limit + 1))
        return Page([DirectMessage(*row) for row in rows[:limit]], more=len(rows) > limit)

    def recent(self, room, limit):
        """Return the room's last ``limit`` messages."""
        return self._backwards(room, None, limit)

    def before(self, room, before_id, limit):
        """Return up to ``limit`` messages older than ``before_id``."""
        return self._backwards(room, before_id, limit)

    def since(self, room, since_id, limit):
        """Return up to ``limit`` messages newer than ``since_id``, the oldest of them first."""
        rows = self._query(
            f'SELECT {_ROOM_COLUMNS} FROM room_messages WHERE room = ? AND id > ? '
            'ORDER BY id LIMIT ?', (room, since_id, limit + 1))
        return Page([Message(*row) for row in rows[:limit]], more=len(rows) > limit)

    def _backwards(self, room, before_id, limit):
        rows = self._query(
            f'SELECT {_ROOM_COLUMNS} FROM room_messages WHERE room = ? AND id < ? '
            'ORDER BY id DESC LIMIT ?',
            (room, before_id if before_id is not None else 2 ** 63 - 1, limit + 1))
        messages = [Message(*row) for row in reversed(rows[:limit])]
        return Page(messages, more=len(rows) > limit)

    def _query(self, sql, params):
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def _transaction(self):
        # IMMEDIATE takes the write lock up front, so two processes never pick the same id.
        self._db.execute('BEGIN IMMEDIATE')
        try:
            yield
        except BaseException:
            self._db.execute('ROLLBACK')
            raise
        self._db.execute('COMMIT')
