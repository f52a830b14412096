"""Message history, without sockets."""
from server.chat.history import MemoryHistory


def test_ids_increase_per_room_and_messages_carry_their_fields():
    history = MemoryHistory(keep=10, clock=lambda: 1234)
    first = history.append('a', 'ana', 'hi')
    history.append('b', 'bob', 'yo')
    second = history.append('a', 'bob', 'hello')
    assert (first.id, second.id) == (1, 2)
    assert history.append('b', 'ana', 'x').id == 2
    assert first.to_dict() == {'id': 1, 'room': 'a', 'nick': 'ana', 'text': 'hi', 'ts': 1234}


def test_recent_returns_the_latest_oldest_first_within_the_kept_window():
    history = MemoryHistory(keep=3)
    for n in range(5):
        history.append('a', 'ana', f'm{n}')
    assert [m.text for m in history.recent('a', 10)] == ['m2', 'm3', 'm4']
    assert [m.text for m in history.recent('a', 2)] == ['m3', 'm4']
    assert history.recent('a', 0) == []
    assert history.recent('empty', 5) == []
