"""The message store on real databases: every test runs on a SQLite file and on PostgreSQL."""
import concurrent.futures
import multiprocessing
import socket
import sqlite3
import threading
import time

import psycopg
import pytest

from server.chat import sessions, store_postgres, store_sqlite
from server.chat.store import StoreUnavailable, open_store, sqlite_path
from server.chat.store_sqlite import SqliteMessageStore
from server.errors import ClientError
from tests.support.postgres_server import wait_for_lock_waiters

BACKENDS = ['sqlite', 'postgres']
WAIT_S = 10


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """A fresh database of each backend: a SQLite file (in a folder yet to exist), a PG database."""
    if request.param == 'sqlite':
        return f'sqlite:///{tmp_path / "nested" / "chat.db"}'
    return request.getfixturevalue('postgres_url')


@pytest.fixture
def open_db(database_url):
    """Open stores on the test's database, each closed after the test."""
    opened = []

    def open_one(**options):
        opened.append(open_store(database_url, '/', **options))
        return opened[-1]
    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_db):
    return open_db(clock=lambda: 1000)


def texts(page):
    return [m.text for m in page.messages]


def schema_version(database_url):
    """Return the schema version a database records, read beside the store."""
    if database_url.startswith('sqlite'):
        with sqlite3.connect(sqlite_path(database_url, '/')) as db:
            (version,) = db.execute('PRAGMA user_version').fetchone()
        db.close()
        return version, len(store_sqlite.MIGRATIONS)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute('SELECT version FROM schema_version').fetchall()
    assert len(rows) == 1
    return rows[0][0], len(store_postgres.MIGRATIONS)


def in_threads(count, action):
    """Run ``action(n)`` in ``count`` threads released together; return their results in order."""
    start = threading.Barrier(count, timeout=WAIT_S)

    def run(n):
        start.wait()
        return action(n)
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count), timeout=60))


def test_ids_increase_by_one_per_room(store):
    first, _ = store.append('a', 'ana', 'hi')
    store.append('b', 'bob', 'yo')
    second, duplicate = store.append('a', 'bob', 'hello')
    assert (first.id, second.id, duplicate) == (1, 2, False)
    assert store.append('b', 'ana', 'x')[0].id == 2
    assert first.to_dict() == {'id': 1, 'room': 'a', 'nick': 'ana', 'user_id': None,
                               'text': 'hi', 'ts': 1000}
    keyed, _ = store.append('a', 'ana', 'signed', 'key-ana')
    assert keyed.to_dict()['user_id'] == sessions.user_id('key-ana')
    assert store.since('a', 2, 10).messages[0].to_dict() == keyed.to_dict()


def test_a_retried_client_id_is_stored_once(store):
    sent, duplicate = store.append('a', 'ana', 'once', 'key-ana', client_id='c-1')
    again, duplicate_again = store.append('a', 'ana', 'once', 'key-ana', client_id='c-1')
    assert duplicate is False and duplicate_again is True
    assert again == sent
    assert texts(store.recent('a', 10)) == ['once']
    assert store.append('other-room', 'ana', 'elsewhere', 'key-ana', client_id='c-1')[1] is False


def test_another_sender_reusing_a_client_id_stores_its_own_message(store):
    store.append('a', 'ana', 'from ana', 'key-ana', client_id='c-1')
    theirs, duplicate = store.append('a', 'eve', 'from eve', 'key-eve', client_id='c-1')
    assert duplicate is False and theirs.text == 'from eve'
    assert texts(store.recent('a', 10)) == ['from ana', 'from eve']


def test_recent_before_and_since_page_in_both_directions(store):
    for n in range(1, 8):
        store.append('a', 'ana', f'm{n}')
    recent = store.recent('a', 3)
    assert texts(recent) == ['m5', 'm6', 'm7'] and recent.more is True
    older = store.before('a', 5, 3)
    assert texts(older) == ['m2', 'm3', 'm4'] and older.more is True
    oldest = store.before('a', 2, 3)
    assert texts(oldest) == ['m1'] and oldest.more is False
    newer = store.since('a', 2, 3)
    assert texts(newer) == ['m3', 'm4', 'm5'] and newer.more is True
    rest = store.since('a', 5, 3)
    assert texts(rest) == ['m6', 'm7'] and rest.more is False
    assert store.since('a', 7, 3).messages == [] and store.recent('none', 5).messages == []


def test_text_is_stored_exactly(store):
    text = 'tab\tnew\nline, emoji \U0001F600, accents é, quotes \'" and \\ backslash'
    store.append('room ü', 'nick ß', text)
    assert store.recent('room ü', 1).messages[0].to_dict()['text'] == text


def test_messages_survive_reopening_the_database(open_db):
    first = open_db()
    first.append('a', 'ana', 'kept')
    first.append_direct('ana', 'bob', 'psst', 'key-ana', 'key-bob')
    first.close()
    second = open_db()
    assert texts(second.recent('a', 5)) == ['kept']
    assert second.append('a', 'bob', 'next')[0].id == 2
    assert second.append_direct('bob', 'ana', 'hi', 'key-bob', 'key-ana')[0].id == 2
    assert [m.text for m in second.direct_since('key-ana', 0, 10).messages] == ['psst', 'hi']


def test_direct_messages_get_ids_and_the_from_to_shape(store):
    message, duplicate = store.append_direct('ana', 'bob', 'psst', 'key-ana', 'key-bob')
    assert duplicate is False
    assert message.to_dict() == {
        'id': 1, 'from': 'ana', 'to': 'bob', 'from_id': sessions.user_id('key-ana'),
        'to_id': sessions.user_id('key-bob'), 'text': 'psst', 'ts': 1000}
    assert store.direct_since('key-bob', 0, 10).messages[0].to_dict() == message.to_dict()


def test_a_retried_direct_message_is_stored_once(store):
    first = store.append_direct('ana', 'bob', 'once', 'key-ana', 'key-bob', client_id='d-1')
    again = store.append_direct('ana', 'bob', 'once', 'key-ana', 'key-bob', client_id='d-1')
    assert again == (first[0], True)
    other_sender = store.append_direct('carl', 'bob', 'mine', 'key-carl', 'key-bob',
                                       client_id='d-1')
    assert other_sender[1] is False
    assert other_sender[0].id == 2  # the retry took no id


def test_direct_history_is_per_session_in_both_directions(store):
    store.append_direct('ana', 'bob', 'to bob', 'key-ana', 'key-bob')
    store.append_direct('carl', 'dora', 'not ours', 'key-carl', 'key-dora')
    store.append_direct('bob', 'ana', 'to ana', 'key-bob', 'key-ana')
    store.append_direct('Bobby', 'carl', 'renamed bob', 'key-bob', 'key-carl')
    page = store.direct_since('key-bob', 0, 2)
    assert [m.text for m in page.messages] == ['to bob', 'to ana'] and page.more is True
    rest = store.direct_since('key-bob', page.messages[-1].id, 2)
    assert [m.text for m in rest.messages] == ['renamed bob'] and rest.more is False
    assert store.direct_since('key-nobody', 0, 5).messages == []


def test_migrations_applied_twice_are_harmless(database_url, open_db):
    first = open_db()
    first.append('a', 'ana', 'kept')
    second = open_db()  # migrates again, finding nothing to do
    assert schema_version(database_url)[0] == schema_version(database_url)[1]
    assert second.append('a', 'bob', 'next')[0].id == 2
    assert texts(first.recent('a', 5)) == ['kept', 'next']


def test_workers_starting_together_migrate_once(database_url, open_db):
    stores = in_threads(4, lambda n: open_db())
    version, latest = schema_version(database_url)
    assert version == latest
    assert [s.append('a', 'ana', f'{n}')[0].id for n, s in enumerate(stores)] == [1, 2, 3, 4]


def test_concurrent_appends_from_several_stores_number_a_room_one_to_n(open_db):
    stores = [open_db() for _ in range(4)]

    def send(n):
        return [stores[n].append('shared', f'w{n}', f'{n}-{i}')[0] for i in range(25)]
    sent = [message for batch in in_threads(4, send) for message in batch]
    stored = stores[0].since('shared', 0, 500).messages
    assert [m.id for m in stored] == list(range(1, 101))
    assert sorted(sent, key=lambda m: m.id) == stored


def test_concurrent_identical_retries_are_stored_once(open_db):
    stores = [open_db() for _ in range(4)]

    def send_all(n):
        return [stores[n].append('a', 'ana', f'text {c}', 'key-ana', client_id=f'c-{c}')
                for c in range(20)]
    results = in_threads(4, send_all)
    for c in range(20):
        answers = [batch[c] for batch in results]
        assert len({message for message, _ in answers}) == 1  # everyone got the one stored
        assert [duplicate for _, duplicate in answers].count(False) == 1
    stored = stores[0].since('a', 0, 100).messages
    assert [m.id for m in stored] == list(range(1, 21))
    assert [m.text for m in stored] == [f'text {c}' for c in range(20)]


def test_concurrent_identical_direct_retries_are_stored_once(open_db):
    stores = [open_db() for _ in range(4)]

    def send_all(n):
        return [stores[n].append_direct('ana', 'bob', f't{c}', 'key-ana', 'key-bob', f'd-{c}')
                for c in range(10)]
    results = in_threads(4, send_all)
    for c in range(10):
        assert len({message for message, _ in (batch[c] for batch in results)}) == 1
    stored = stores[0].direct_since('key-bob', 0, 100).messages
    assert [m.id for m in stored] == list(range(1, 11))


def _append_many(database_url, worker, count):
    store = open_store(database_url, '/')
    for n in range(count):
        store.append('shared', f'worker-{worker}', f'{worker}-{n}')
    store.close()


def test_processes_sharing_the_database_never_reuse_an_id(database_url, open_db):
    open_db().close()  # the schema exists before the workers race
    context = multiprocessing.get_context('spawn')
    workers = [context.Process(target=_append_many, args=(database_url, w, 50))
               for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    ids = [m.id for m in open_db().since('shared', 0, 500).messages]
    assert ids == list(range(1, 151))


def test_a_database_from_the_first_schema_is_upgraded_in_place(tmp_path):
    path = tmp_path / 'old.db'
    old = sqlite3.connect(path)
    old.executescript(store_sqlite.MIGRATIONS[0] + 'PRAGMA user_version = 1;')  # first release
    old.execute("INSERT INTO direct_messages (sender, recipient, text, ts) "
                "VALUES ('a', 'b', 'x', 1)")
    old.execute("INSERT INTO room_messages VALUES ('r', 1, 'a', 'kept', 1, NULL)")
    old.commit()
    old.close()
    store = SqliteMessageStore(str(path))
    assert [m.text for m in store.recent('r', 5).messages] == ['kept']
    assert store.append('r', 'a', 'next', 'ka', client_id='c')[0].id == 2
    assert store.append_direct('a', 'b', 'y', 'ka', 'kb')[0].id == 2
    assert store._db.execute('PRAGMA user_version').fetchone() == (len(store_sqlite.MIGRATIONS),)
    store.close()


def test_sqlite_calls_run_in_the_thread_run_blocking_gives_them(tmp_path):
    threads = set()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        def run_blocking(call):
            def traced():
                threads.add(threading.get_ident())
                return call()
            return pool.submit(traced).result()
        store = SqliteMessageStore(str(tmp_path / 'chat.db'), run_blocking=run_blocking)
        assert store.append('a', 'ana', 'hi')[0].id == 1
        assert texts(store.recent('a', 5)) == ['hi']
        store.close()
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_a_sqlite_file_locked_too_long_is_unavailable(tmp_path):
    path = str(tmp_path / 'chat.db')
    store = SqliteMessageStore(path, busy_timeout=0.1)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute('BEGIN IMMEDIATE')  # another process writing, for longer than we wait
    try:
        with pytest.raises(StoreUnavailable) as refused:
            store.append('a', 'ana', 'waits')
        assert refused.value.code == 'unavailable'
    finally:
        holder.execute('ROLLBACK')
        holder.close()
    assert store.append('a', 'ana', 'goes through')[0].id == 1
    store.close()


def test_a_retry_that_loses_the_race_takes_no_id(postgres_url):
    stores = [open_store(postgres_url, '/') for _ in range(2)]
    try:
        stores[0].append('a', 'ana', 'first')
        with psycopg.connect(postgres_url) as holder, \
                psycopg.connect(postgres_url, autocommit=True) as watcher:
            # Hold the room's counter: both retries pass their look-up, then queue behind it.
            holder.execute("SELECT 1 FROM id_counters WHERE name = 'a' FOR UPDATE")
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                sends = [pool.submit(s.append, 'a', 'ana', 'retried', 'key', 'c-1')
                         for s in stores]
                wait_for_lock_waiters(watcher, 2)
                holder.rollback()
                answers = [send.result(WAIT_S) for send in sends]
        assert answers[0][0] == answers[1][0] and answers[0][0].id == 2
        assert sorted(duplicate for _, duplicate in answers) == [False, True]
        assert stores[0].append('a', 'ana', 'next')[0].id == 3
    finally:
        for store in stores:
            store.close()



def test_postgres_down_refuses_with_unavailable_and_recovers(postgres_server, postgres_url):
    store = open_store(postgres_url, '/')
    acknowledged = [store.append('a', 'ana', 'before')[0]]
    postgres_server.stop()
    try:
        for attempt in (lambda: store.append('a', 'ana', 'during'),
                        lambda: store.append_direct('ana', 'bob', 'dm', 'ka', 'kb'),
                        lambda: store.recent('a', 5), lambda: store.since('a', 0, 5),
                        lambda: store.direct_since('ka', 0, 5)):
            with pytest.raises(ClientError) as refused:
                attempt()
            assert refused.value.code == 'unavailable'
    finally:
        postgres_server.start()
    acknowledged.append(store.append('a', 'ana', 'after')[0])
    assert store.since('a', 0, 10).messages == acknowledged
    assert [m.id for m in acknowledged] == [1, 2]
    store.close()


@pytest.mark.parametrize('outage', ['restart', 'kill'])
def test_postgres_restarted_or_killed_between_calls_loses_nothing(postgres_server, postgres_url,
                                                                   outage):
    store = open_store(postgres_url, '/')
    acknowledged = [store.append('a', 'ana', f'm{n}')[0] for n in range(3)]
    if outage == 'kill':
        postgres_server.kill()
    postgres_server.restart()
    # The pooled connections died with the server: they are noticed and replaced unseen.
    acknowledged.append(store.append('a', 'ana', 'after')[0])
    assert store.since('a', 0, 10).messages == acknowledged
    assert [m.id for m in acknowledged] == [1, 2, 3, 4]
    store.close()


def test_a_store_opened_while_postgres_is_down_migrates_when_it_is_back(postgres_server,
                                                                         postgres_url):
    postgres_server.stop()
    try:
        store = open_store(postgres_url, '/')
        with pytest.raises(StoreUnavailable):
            store.append('a', 'ana', 'during')
    finally:
        postgres_server.start()
    assert store.append('a', 'ana', 'after')[0].id == 1
    store.close()


def test_postgres_reuses_its_connections(postgres_url):
    store = open_store(postgres_url, '/')
    for n in range(5):
        store.append('a', 'ana', f'm{n}')
        store.recent('a', 5)
    with psycopg.connect(postgres_url) as watcher:
        (connections,) = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'chat-server' "
            'AND datname = current_database()').fetchone()
    store.close()
    assert connections == 1


def test_a_postgres_that_never_answers_is_unavailable_within_the_connect_timeout():
    with socket.create_server(('127.0.0.1', 0), backlog=8) as silent:  # accepts, says nothing
        url = f'postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/chat?connect_timeout=2'
        store = open_store(url, '/')  # starts anyway, to migrate when the database answers
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.append('a', 'ana', 'lost')
        assert time.monotonic() - started < 4
        store.close()


def test_a_statement_stuck_behind_a_lock_is_cancelled_and_unavailable(postgres_url):
    store = open_store(f'{postgres_url}?options=-c%20statement_timeout%3D300', '/')
    store.append('a', 'ana', 'first')
    with psycopg.connect(postgres_url) as holder:
        holder.execute("SELECT 1 FROM id_counters WHERE name = 'a' FOR UPDATE")
        with pytest.raises(StoreUnavailable):
            store.append('a', 'ana', 'stuck')
    assert store.append('a', 'ana', 'next')[0].id == 2
    store.close()


def test_open_store_picks_the_backend_by_scheme(tmp_path):
    store = open_store('sqlite:///chat.db', tmp_path)
    assert isinstance(store, SqliteMessageStore)
    store.close()
    with pytest.raises(ValueError, match="DATABASE_URL.*'mysql'") as refused:
        open_store('mysql://user:secret@db/chat', tmp_path)
    assert 'secret' not in str(refused.value)


@pytest.mark.parametrize('url, expected', [
    ('sqlite:///instance/chat.db', '/root/instance/chat.db'),
    ('sqlite:////var/lib/chat.db', '/var/lib/chat.db'),
    ('sqlite:///:memory:', ':memory:'),
])
def test_database_urls(url, expected):
    assert sqlite_path(url, '/root') == expected


def test_other_database_urls_are_refused():
    with pytest.raises(ValueError, match='DATABASE_URL'):
        sqlite_path('postgres://db/chat', '/root')


def test_direct_messages_page_both_ways(store):
    for n in range(1, 6):
        store.append_direct('ana', 'bob', f'd{n}', 'key-ana', 'key-bob')
    store.append_direct('carl', 'dan', 'not theirs', 'key-carl', 'key-dan')
    newest = store.direct_before('key-bob', None, 2)
    assert [m.text for m in newest.messages] == ['d4', 'd5'] and newest.more is True
    older = store.direct_before('key-ana', newest.messages[0].id, 10)
    assert [m.text for m in older.messages] == ['d1', 'd2', 'd3'] and older.more is False
    later = store.direct_since('key-bob', older.messages[-1].id, 10)
    assert [m.text for m in later.messages] == ['d4', 'd5']


def test_room_messages_sent_at_once_from_many_threads_get_consecutive_ids(tmp_path):
    from server.chat.store_sqlite import SqliteMessageStore
    store = SqliteMessageStore(str(tmp_path / 'chat.db'))
    try:
        results = []

        def send(n):
            results.append(store.append('r', 'ana', f'm{n}', 'key', client_id=f'c{n % 50}'))

        threads = [threading.Thread(target=send, args=(n,)) for n in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        stored = [message for message, duplicate in results if not duplicate]
        assert sorted(m.id for m in stored) == list(range(1, 51))
        assert sum(duplicate for _, duplicate in results) == 50  # each client_id twice
        assert [m.id for m in store.recent('r', 100).messages] == list(range(1, 51))
    finally:
        store.close()
