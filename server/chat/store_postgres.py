"""Message history in PostgreSQL, for workers on several machines sharing one history.

Ids: each room has a counter row, bumped in the same transaction as the insert
(``INSERT … ON CONFLICT DO UPDATE … RETURNING``). The row lock orders a room's writers, so ids
go up by exactly one and commit in id order, whichever worker or connection writes; direct
messages share one such counter, so a session's ``since_id`` cursor never skips one either.
A send that loses a race to an identical retry rolls back whole (its counter bump with it)
and returns the row the winner stored, marked duplicate.

Outages: a connection that fails (server down, restarting, unreachable, too slow) makes that
call raise ``StoreUnavailable`` (code ``unavailable``), and is dropped; the next call connects
again, within ``connect_timeout`` seconds. No call ever waits without a bound.

gevent: run.py monkey-patches before psycopg is imported, so psycopg waits on its socket with
gevent's ``select.poll`` (see ``psycopg.waiting``): a slow query parks its greenlet, not the
loop. The pool's semaphore is then gevent's too. Without gevent (tests), callers are threads.
"""
import collections
import contextlib
import logging
import select
import threading

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from server.chat.store import (DIRECT_COLUMNS, ROOM_COLUMNS, DirectMessage, HistoryReads,
                               Message, StoreUnavailable)
from server.clock import now_ms

log = logging.getLogger(__name__)

# Each step brings the database from the version before it (table schema_version) to its own.
MIGRATIONS = [
    """
CREATE TABLE id_counters (
    kind    text   NOT NULL,
    name    text   NOT NULL,
    last_id bigint NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE room_messages (
    room       text   NOT NULL,
    id         bigint NOT NULL,
    nick       text   NOT NULL,
    text       text   NOT NULL,
    ts         bigint NOT NULL,
    sender_key text,
    client_id  text,
    PRIMARY KEY (room, id)
);
CREATE UNIQUE INDEX room_messages_client_id
    ON room_messages (room, (COALESCE(sender_key, '')), client_id) WHERE client_id IS NOT NULL;
CREATE TABLE direct_messages (
    id            bigint PRIMARY KEY,
    sender        text   NOT NULL,
    recipient     text   NOT NULL,
    text          text   NOT NULL,
    ts            bigint NOT NULL,
    sender_key    text,
    recipient_key text,
    client_id     text
);
CREATE UNIQUE INDEX direct_messages_client_id
    ON direct_messages (sender_key, client_id) WHERE client_id IS NOT NULL;
CREATE INDEX direct_messages_sender_key ON direct_messages (sender_key, id);
CREATE INDEX direct_messages_recipient_key ON direct_messages (recipient_key, id);
""",
]

# Held for the migration transaction: workers starting together migrate one after the other.
MIGRATION_LOCK = 0x63686174  # 'chat'

POOL_SIZE = 5
CONNECT_TIMEOUT_S = 3
# Connection settings a DATABASE_URL may override. The server cancels a statement after 5 s
# (a lock held by a stuck transaction included); keepalives and tcp_user_timeout notice a
# server that vanished without closing the connection.
CONNECTION_DEFAULTS = {
    'connect_timeout': CONNECT_TIMEOUT_S,
    'options': '-c statement_timeout=5000',
    'keepalives': 1,
    'keepalives_idle': 5,
    'keepalives_interval': 2,
    'keepalives_count': 3,
    'tcp_user_timeout': 10000,
    'application_name': 'chat-server',
}


_NEXT_ID = """
INSERT INTO id_counters (kind, name, last_id) VALUES (%s, %s, 1)
ON CONFLICT (kind, name) DO UPDATE SET last_id = id_counters.last_id + 1
RETURNING last_id
"""
_STORED_ROOM_MESSAGE = (
    f'SELECT {ROOM_COLUMNS} FROM room_messages '
    "WHERE room = %s AND COALESCE(sender_key, '') = %s AND client_id = %s")
_STORED_DIRECT_MESSAGE = (
    f'SELECT {DIRECT_COLUMNS} FROM direct_messages WHERE sender_key = %s AND client_id = %s')


def migrate(conn):
    """Bring the database to the latest schema, once, even if several workers try together."""
    with conn.transaction():
        # A migration may take a while, and so may waiting for another worker's.
        conn.execute("SET LOCAL statement_timeout = '60s'")
        conn.execute('SELECT pg_advisory_xact_lock(%s)', (MIGRATION_LOCK,))
        conn.execute('CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)')
        row = conn.execute('SELECT version FROM schema_version').fetchone()
        if row is None:
            conn.execute('INSERT INTO schema_version (version) VALUES (0)')
        version = row[0] if row else 0
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            conn.execute(script)
            conn.execute('UPDATE schema_version SET version = %s', (number,))


class PostgresMessageStore(HistoryReads):
    """Room and direct messages in PostgreSQL, shared by every worker that opens the URL."""

    PARAM = '%s'

    def __init__(self, url, clock=now_ms, pool_size=POOL_SIZE):
        self._clock = clock
        self._params = {**CONNECTION_DEFAULTS, **conninfo_to_dict(url)}
        self._pool = _Pool(self._connect, pool_size, wait_timeout=CONNECT_TIMEOUT_S)
        self._schema_ready = False
        self._available = True
        try:
            with self._connection():
                pass
        except StoreUnavailable:
            # A worker starts even while the database is down; it migrates on first use.
            log.warning('history database unreachable at start; will retry on first use')
        except BaseException:
            self.close()
            raise

    def close(self):
        """Close every connection; one in use is closed when its call ends."""
        self._pool.close()

    def append(self, room, nick, text, sender_key=None, client_id=None):
        """Store a room message under the room's next id; return ``(message, duplicate)``.

        When the sender's session already stored this ``client_id`` in the room, nothing is
        written and the stored message is returned with ``duplicate`` true.
        """
        stored_key = (room, sender_key or '', client_id)
        with self._connection() as conn:
            if client_id is not None:
                row = conn.execute(_STORED_ROOM_MESSAGE, stored_key).fetchone()
                if row:
                    return Message(*row), True
            message = self._insert_room_message(conn, room, nick, text, sender_key, client_id)
            if message is None:  # an identical retry won the race: its row is the message
                return Message(*conn.execute(_STORED_ROOM_MESSAGE, stored_key).fetchone()), True
        return message, False

    def append_direct(self, sender, recipient, text, sender_key, recipient_key, client_id=None):
        """Store a direct message between two sessions; return ``(message, duplicate)``."""
        stored_key = (sender_key, client_id)
        with self._connection() as conn:
            if client_id is not None:
                row = conn.execute(_STORED_DIRECT_MESSAGE, stored_key).fetchone()
                if row:
                    return DirectMessage(*row), True
            message = self._insert_direct_message(
                conn, sender, recipient, text, sender_key, recipient_key, client_id)
            if message is None:
                row = conn.execute(_STORED_DIRECT_MESSAGE, stored_key).fetchone()
                return DirectMessage(*row), True
        return message, False

    def _insert_room_message(self, conn, room, nick, text, sender_key, client_id):
        """Insert under the room's next id; return None, having stored nothing, on a retry."""
        with conn.transaction() as tx:
            (next_id,) = conn.execute(_NEXT_ID, ('room', room)).fetchone()
            message = Message(next_id, room, nick, text, self._clock(), sender_key)
            inserted = conn.execute(
                'INSERT INTO room_messages (room, id, nick, text, ts, sender_key, client_id) '
                'VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id',
                (room, message.id, nick, text, message.ts, sender_key, client_id)).fetchone()
            if inserted is None:
                raise psycopg.Rollback(tx)  # un-bumps the counter: no id is lost
        return message if inserted else None

    def _insert_direct_message(self, conn, sender, recipient, text, sender_key, recipient_key,
                               client_id):
        """Insert under the next direct id; return None, having stored nothing, on a retry."""
        with conn.transaction() as tx:
            (next_id,) = conn.execute(_NEXT_ID, ('direct', '')).fetchone()
            message = DirectMessage(next_id, sender, recipient, text, self._clock(),
                                    sender_key, recipient_key)
            inserted = conn.execute(
                'INSERT INTO direct_messages '
                '(id, sender, recipient, text, ts, sender_key, recipient_key, client_id) '
                'VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id',
                (message.id, sender, recipient, text, message.ts, sender_key, recipient_key,
                 client_id)).fetchone()
            if inserted is None:
                raise psycopg.Rollback(tx)
        return message if inserted else None

    def _query(self, sql, params):
        with self._connection() as conn:
            return conn.execute(sql, params).fetchall()

    def _connect(self):
        return psycopg.connect(autocommit=True, **self._params)

    @contextlib.contextmanager
    def _connection(self):
        """Lend a pooled connection, migrated; a database that fails is ``unavailable``."""
        try:
            with self._pool.connection() as conn:
                if not self._schema_ready:
                    migrate(conn)
                    self._schema_ready = True
                yield conn
        except (psycopg.OperationalError, PoolExhausted) as error:
            self._set_available(False, error)
            raise StoreUnavailable() from error
        self._set_available(True)

    def _set_available(self, available, error=None):
        # Logged when the state changes, not per call: an outage is one warning, not a flood.
        if available == self._available:
            return
        self._available = available
        if available:
            log.info('history database available again')
        else:
            # psycopg's operational errors describe the connection, never the rows' contents.
            log.warning('history database unavailable: %s: %s', type(error).__name__, error)


class PoolExhausted(Exception):
    """Every connection stayed busy for longer than the pool waits."""


class _Pool:
    """A few connections, each lent to one caller at a time; a broken one is thrown away."""

    def __init__(self, connect, size, wait_timeout):
        self._connect = connect
        self._idle = collections.deque()
        self._slots = threading.BoundedSemaphore(size)
        self._wait_timeout = wait_timeout
        self._closed = False

    @contextlib.contextmanager
    def connection(self):
        """Lend a live connection, connecting a new one when none is idle."""
        if not self._slots.acquire(timeout=self._wait_timeout):
            raise PoolExhausted()
        try:
            conn = self._take()
            try:
                yield conn
            finally:
                self._give_back(conn)
        finally:
            self._slots.release()

    def close(self):
        """Close the idle connections and every one given back from now on."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    def _take(self):
        while self._idle:
            conn = self._idle.pop()
            if _looks_alive(conn):
                return conn
            conn.close()
        return self._connect()

    def _give_back(self, conn):
        if self._closed or conn.closed or conn.broken or not _idle(conn):
            conn.close()
        else:
            self._idle.append(conn)


def _idle(conn):
    # Outside any transaction: one that failed half-way is never lent again.
    return conn.info.transaction_status == pq.TransactionStatus.IDLE


def _looks_alive(conn):
    """Return False for an idle connection the server has closed (after a restart, say).

    An idle connection has nothing to read unless the server said goodbye, so this costs no
    round trip. A connection that dies later fails its call, which is then ``unavailable``.
    """
    if conn.closed or conn.broken:
        return False
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    return not poller.poll(0)
