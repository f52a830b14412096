"""Typing flags with a fake clock."""
from server.chat.typing import TypingTracker


def test_flags_start_refresh_stop_and_expire():
    now = [0.0]
    typing = TypingTracker(timeout=5, clock=lambda: now[0])
    assert typing.start('ana', 'lobby') is True
    now[0] = 3
    assert typing.start('ana', 'lobby') is False
    assert typing.start('bob', 'lobby') is True
    now[0] = 7.9
    assert typing.expire() == []
    now[0] = 8.0
    assert typing.expire() == [('ana', 'lobby'), ('bob', 'lobby')]
    assert len(typing) == 0
    assert typing.stop('ana', 'lobby') is False


def test_stop_and_stop_client():
    typing = TypingTracker(timeout=5, clock=lambda: 0)
    typing.start('ana', 'a')
    typing.start('ana', 'b')
    typing.start('bob', 'a')
    assert typing.stop('bob', 'a') is True
    assert sorted(typing.stop_client('ana')) == ['a', 'b']
    assert len(typing) == 0
