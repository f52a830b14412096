"""Session tokens, without sockets."""
import pytest

from server.chat import sessions


def test_new_tokens_are_unguessable_and_accepted_back():
    tokens = {sessions.new_token() for _ in range(100)}
    assert len(tokens) == 100
    token = tokens.pop()
    assert len(token) >= 32 and sessions.presented_token({'session': token}) == token


@pytest.mark.parametrize('auth', [None, 'token', {}, {'session': None}, {'session': 42},
                                  {'session': 'short'}, {'session': 'x' * 65},
                                  {'session': 'has spaces and more than thirty-two characters'}])
def test_malformed_tokens_are_ignored(auth):
    assert sessions.presented_token(auth) is None


def test_the_stored_key_is_a_hash_not_the_token():
    token = sessions.new_token()
    key = sessions.session_key(token)
    assert key == sessions.session_key(token) and token not in key and len(key) == 64
