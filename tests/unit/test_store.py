"""The SQLite message store, on real database files."""
import multiprocessing
import sqlite3

import pytest

from server.chat.store import MIGRATIONS, MessageStore, sqlite_path


@pytest.fixture
def store(tmp_path):
    db = MessageStore(str(tmp_path / 'chat.db'), clock=lambda: 1000)
    yield db
    db.close()


def texts(page):
    return [m.text for m in page.messages]


def test_ids_increase_by_one_per_room(store):
    first, _ = store.append('a', 'ana', 'hi')
    store.append('b', 'bob', 'yo')
    second, duplicate = store.append('a', 'bob', 'hello')
    assert (first.id, second.id, duplicate) == (1, 2, False)
    assert store.append('b', 'ana', 'x')[0].id == 2
    assert first.to_dict() == {'id': 1, 'room': 'a', 'nick': 'ana', 'text': 'hi', 'ts': 1000}


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


def test_messages_survive_reopening_the_database(tmp_path):
    path = str(tmp_path / 'nested' / 'chat.db')
    first = MessageStore(path)
    first.append('a', 'ana', 'kept')
    first.append_direct('ana', 'bob', 'psst', 'key-ana', 'key-bob')
    first.close()
    second = MessageStore(path)
    assert texts(second.recent('a', 5)) == ['kept']
    assert second.append('a', 'bob', 'next')[0].id == 2
    assert second.append_direct('bob', 'ana', 'hi', 'key-bob', 'key-ana')[0].id == 2
    assert [m.text for m in second.direct_since('key-ana', 0, 10).messages] == ['psst', 'hi']
    second.close()


def test_direct_messages_get_ids_and_the_from_to_shape(store):
    message, duplicate = store.append_direct('ana', 'bob', 'psst', 'key-ana', 'key-bob')
    assert duplicate is False
    assert message.to_dict() == {'id': 1, 'from': 'ana', 'to': 'bob', 'text': 'psst', 'ts': 1000}


def test_a_retried_direct_message_is_stored_once(store):
    first = store.append_direct('ana', 'bob', 'once', 'key-ana', 'key-bob', client_id='d-1')
    again = store.append_direct('ana', 'bob', 'once', 'key-ana', 'key-bob', client_id='d-1')
    assert again == (first[0], True)
    other_sender = store.append_direct('carl', 'bob', 'mine', 'key-carl', 'key-bob', client_id='d-1')
    assert other_sender[1] is False


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


def test_a_database_from_the_first_schema_is_upgraded_in_place(tmp_path):
    path = tmp_path / 'old.db'
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0] + 'PRAGMA user_version = 1;')  # the first released schema
    old.execute("INSERT INTO direct_messages (sender, recipient, text, ts) VALUES ('a', 'b', 'x', 1)")
    old.execute("INSERT INTO room_messages VALUES ('r', 1, 'a', 'kept', 1, NULL)")
    old.commit()
    old.close()
    store = MessageStore(str(path))
    assert [m.text for m in store.recent('r', 5).messages] == ['kept']
    assert store.append('r', 'a', 'next', 'ka', client_id='c')[0].id == 2
    assert store.append_direct('a', 'b', 'y', 'ka', 'kb')[0].id == 2
    assert store._db.execute('PRAGMA user_version').fetchone() == (len(MIGRATIONS),)
    store.close()


def _append_many(path, worker, count):
    store = MessageStore(path)
    for n in range(count):
        store.append('shared', f'worker-{worker}', f'{worker}-{n}')
    store.close()


def test_processes_sharing_the_file_never_reuse_an_id(tmp_path):
    path = str(tmp_path / 'chat.db')
    MessageStore(path).close()
    context = multiprocessing.get_context('spawn')
    workers = [context.Process(target=_append_many, args=(path, w, 50)) for w in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    store = MessageStore(path)
    ids = [m.id for m in store.since('shared', 0, 500).messages]
    store.close()
    assert ids == list(range(1, 151))


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
