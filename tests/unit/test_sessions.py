"""Session tokens, without sockets."""
import pytest

from server.chat import sessions
from server.chat.sessions import SessionTokens
from server.errors import ClientError

SECRET = 'this-servers-secret'


@pytest.fixture
def tokens():
    return SessionTokens(SECRET)


def test_issued_tokens_are_unguessable_signed_and_accepted_back(tokens):
    issued = {tokens.issue() for _ in range(100)}
    assert len(issued) == 100
    token = issued.pop()
    assert sessions.TOKEN_FORMAT.fullmatch(token)
    assert tokens.presented({'session': token}) == token
    assert SessionTokens(SECRET).presented({'session': token}) == token  # another worker


@pytest.mark.parametrize('auth', [None, 'token', [], {}, {'session': None}, {'nick': 'Ana'}])
def test_a_connect_naming_no_token_is_a_new_session(tokens, auth):
    assert tokens.presented(auth) is None


def tampered(token):
    """The token with one character of its random part changed."""
    return ('B' if token[0] == 'A' else 'A') + token[1:]


@pytest.mark.parametrize('make_token', [
    lambda tokens: 'x' * 43,  # what clients made up before tokens were signed
    lambda tokens: 'a' * 43 + '.' + 'b' * 43,
    lambda tokens: tampered(tokens.issue()),
    lambda tokens: tokens.issue()[:-1] + '.',
    lambda tokens: SessionTokens('an-old-secret').issue(),
    lambda tokens: 42,
    lambda tokens: '',
    lambda tokens: tokens.issue() + ' ',
])
def test_a_token_this_server_did_not_sign_is_refused_as_such(tokens, make_token):
    with pytest.raises(ClientError) as refused:
        tokens.presented({'session': make_token(tokens)})
    assert refused.value.code == 'invalid_session'
    assert 'SECRET_KEY' in refused.value.message


def test_the_stored_key_is_a_hash_not_the_token(tokens):
    token = tokens.issue()
    key = sessions.session_key(token)
    assert key == sessions.session_key(token) and token not in key and len(key) == 64


def test_a_signed_in_user_has_one_key_of_its_own():
    key = sessions.user_key('ana')
    assert key == sessions.user_key('ana') != sessions.user_key('bob')
    assert len(key) == 64 and 'ana' not in key
    assert key != sessions.session_key('ana')
    assert sessions.user_id(key) != sessions.user_id(sessions.user_key('bob'))
