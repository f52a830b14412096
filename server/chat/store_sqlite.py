"""Message history in SQLite, for one machine: processes on it may share the file.

The database runs in WAL mode with ``synchronous=NORMAL``: a committed message survives the
process being killed or restarted; only an operating-system crash or power cut may lose the
last commits. SQLite blocks its caller, so every call goes through ``run_blocking``: under
gevent, one dedicated OS thread, which keeps the event loop free while a write waits for the
file lock another process holds. Room messages sent at the same moment are stored together,
in one call and one transaction (group commit): each is acknowledged once that commits.
"""
import contextlib
import functools
import logging
import sqlite3
import threading
import time
from pathlib import Path

from server.chat.batching import Batcher
from server.chat.store import (DIRECT_COLUMNS, ROOM_COLUMNS, DirectMessage, HistoryReads,
                               Message, StoreUnavailable)
from server.clock import now_ms

log = logging.getLogger(__name__)

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


# Failures that pass (a lock held too long by another process, a full or failing disk): the
# client is told to try again, as when a database server is down.
_PASSING_ERRORS = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR,
                   sqlite3.SQLITE_FULL}


def inline_runner():
    """Return a ``run_blocking`` that runs each call in its caller's thread, one at a time."""
    lock = threading.Lock()

    def run(call):
        with lock:
            return call()
    return run


class SqliteMessageStore(HistoryReads):
    """Room and direct messages in one SQLite database, safe to share between processes.

    ``run_blocking(call)`` must run one call at a time (the connection is shared): a pool of
    one thread does, and so does the default, ``inline_runner()``. A write waits up to
    ``busy_timeout`` seconds for another process's lock, then is ``unavailable``.
    """

    def __init__(self, path, clock=now_ms, run_blocking=None, busy_timeout=10.0):
        if path != ':memory:':
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._run_blocking = run_blocking or inline_runner()
        # check_same_thread off: the connection is opened here and used in run_blocking's thread.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                                   timeout=busy_timeout)
        self._busy_timeout = busy_timeout
        self._room_writes = Batcher(self._append_batch)
        self._run(self._setup)

    def _setup(self):
        self._enable_wal()
        self._db.execute('PRAGMA synchronous=NORMAL')
        self._migrate()

    def _enable_wal(self):
        # Switching a new file to WAL needs it to itself for a moment, and SQLite answers
        # "locked" at once instead of waiting when workers start together: try again a while.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                self._db.execute('PRAGMA journal_mode=WAL')
                return
            except sqlite3.OperationalError as error:
                if 'locked' not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _migrate(self):
        with self._transaction():
            (version,) = self._db.execute('PRAGMA user_version').fetchone()
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(';')):
                    self._db.execute(statement)
                self._db.execute(f'PRAGMA user_version = {number}')

    def close(self):
        """Close the database connection, after any call in flight."""
        self._run_blocking(self._db.close)

    def append(self, room, nick, text, sender_key=None, client_id=None):
        """Store a room message under the room's next id; return ``(message, duplicate)``.

        When the sender's session already stored this ``client_id`` in the room, nothing is
        written and the stored message is returned with ``duplicate`` true.
        """
        return self._room_writes.submit(room, nick, text, sender_key, client_id)

    def _append_batch(self, batch):
        return self._run(self._append_all, batch)

    def _append_all(self, batch):
        with self._transaction():
            return [self._insert_room_message(*args) for args in batch]

    def append_direct(self, sender, recipient, text, sender_key, recipient_key, client_id=None):
        """Store a direct message between two sessions; return ``(message, duplicate)``."""
        return self._run(self._append_direct, sender, recipient, text, sender_key,
                         recipient_key, client_id)

    def _insert_room_message(self, room, nick, text, sender_key, client_id):
        """Store one room message inside the caller's transaction; ``(message, duplicate)``."""
        if client_id is not None:
            row = self._db.execute(
                f'SELECT {ROOM_COLUMNS} FROM room_messages '
                'WHERE room = ? AND sender_key IS ? AND client_id = ?',
                (room, sender_key, client_id)).fetchone()
            if row:
                return Message(*row), True
        (next_id,) = self._db.execute(
            'SELECT COALESCE(MAX(id), 0) + 1 FROM room_messages WHERE room = ?',
            (room,)).fetchone()
        message = Message(next_id, room, nick, text, self._clock(), sender_key)
        self._db.execute(
            'INSERT INTO room_messages (room, id, nick, text, ts, sender_key, client_id) '
            'VALUES (?, ?, ?, ?, ?, ?, ?)',
            (room, message.id, nick, text, message.ts, sender_key, client_id))
        return message, False

    def _append_direct(self, sender, recipient, text, sender_key, recipient_key, client_id):
        ts = self._clock()
        with self._transaction():
            if client_id is not None:
                row = self._db.execute(
                    f'SELECT {DIRECT_COLUMNS} FROM direct_messages '
                    'WHERE sender_key = ? AND client_id = ?', (sender_key, client_id)).fetchone()
                if row:
                    return DirectMessage(*row), True
            cursor = self._db.execute(
                'INSERT INTO direct_messages '
                '(sender, recipient, text, ts, sender_key, recipient_key, client_id) '
                'VALUES (?, ?, ?, ?, ?, ?, ?)',
                (sender, recipient, text, ts, sender_key, recipient_key, client_id))
        return DirectMessage(cursor.lastrowid, sender, recipient, text, ts, sender_key,
                             recipient_key), False

    def _query(self, sql, params):
        return self._run(lambda: self._db.execute(sql, params).fetchall())

    def _run(self, method, *args):
        """Run one database call through ``run_blocking``; a passing failure is ``unavailable``."""
        try:
            return self._run_blocking(functools.partial(method, *args))
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF not in _PASSING_ERRORS:
                raise
            log.warning('history database unavailable (%s)', error.sqlite_errorname)
            raise StoreUnavailable() from error

    @contextlib.contextmanager
    def _transaction(self):
        # IMMEDIATE takes the write lock up front, so two processes never pick the same id.
        self._db.execute('BEGIN IMMEDIATE')
        try:
            yield
            self._db.execute('COMMIT')
        except BaseException:
            # A failed COMMIT leaves the transaction open too; the next call must start clean.
            if self._db.in_transaction:
                self._db.execute('ROLLBACK')
            raise
