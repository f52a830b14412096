"""Every text field a /chat client sends, over arbitrary unicode: refused whole, or kept exactly.

Each property draws one value for one field and checks both ways an event may end: refused with
a documented code (never ``internal_error``) and nothing changed, stored or announced; or
accepted, with names kept in the PRECIS Nickname form of the input (RFC 8266: trimmed, spaces
collapsed, NFKC) and message text kept character for character, in the echo, in what other
clients receive and in the history read back afterwards.

Hypothesis runs many examples per test, so these tests build their own app (once per test)
instead of taking the function-scoped ``app`` fixture; every example connects fresh clients,
uses fresh rooms, and disconnects its clients when done.
"""
import contextlib
import itertools
import json

from hypothesis import example, given, settings
from hypothesis import strategies as st
from precis_i18n import get_profile

from config import TestingConfig
from server import create_app, shutdown
from server.extensions import socketio

NS = '/chat'
# Many events per client per example: the rate limit is tested elsewhere.
OVERRIDES = {'RATE_LIMIT_BURST': 1_000_000}
settings.register_profile('text_properties', max_examples=200, deadline=None, database=None)
SETTINGS = settings.get_profile('text_properties')
NICKNAME = get_profile('NicknameCasePreserved')

TEXT_CODES = frozenset({'bad_request', 'empty_message', 'message_too_long'})
NICK_CODES = frozenset({'bad_request', 'invalid_nick', 'nick_taken'})
JOIN_CODES = frozenset({'bad_request', 'invalid_room', 'too_many_rooms', 'room_full'})
ROOM_CODES = frozenset({'bad_request', 'invalid_room', 'not_in_room'})
ROOM_MESSAGE_CODES = ROOM_CODES | TEXT_CODES
DIRECT_CODES = TEXT_CODES | {'invalid_nick', 'unknown_nick'}

EVERY_CATEGORY = (
    'Lu', 'Ll', 'Lt', 'Lm', 'Lo', 'Mn', 'Mc', 'Me', 'Nd', 'Nl', 'No',
    'Pc', 'Pd', 'Ps', 'Pe', 'Pi', 'Pf', 'Po', 'Sm', 'Sc', 'Sk', 'So',
    'Zs', 'Zl', 'Zp', 'Cc', 'Cf', 'Cs', 'Co', 'Cn',
)
ANY_CHARACTER = st.characters(codec=None, categories=EVERY_CATEGORY)
# Drawn from every category at once, a character is nearly always a letter or unassigned (a
# lone surrogate about one in ten thousand), so each kind that storage, JSON or a one-line name
# may trip over gets a branch of its own.
AWKWARD_CHARACTER = st.one_of(
    ANY_CHARACTER,
    st.characters(codec=None, categories=['Cs']),  # lone surrogates
    st.characters(codec=None, categories=['Cc', 'Cf', 'Zl', 'Zp']),  # controls, format
    st.characters(codec=None, categories=['Co', 'Cn']),  # private use, unassigned
    st.characters(codec=None, min_codepoint=0x10000),  # astral: a surrogate pair in JSON
)
SPACES = st.text(st.sampled_from(' \t\n\r\x0b\x0c\x1f\x85\xa0\u2028\u3000'))
TEXT = st.tuples(
    SPACES,
    # st.text merges its alphabet into one pool, where the rare kinds stay rare; a list keeps
    # the branches apart.
    st.one_of(st.text(ANY_CHARACTER), st.lists(AWKWARD_CHARACTER).map(''.join)),
    SPACES,
).map(''.join)
EXAMPLES = ('\udfff', 'x\udc00', '\ud800 text', ' \udbff\udfff ', 'ok 😀', ' a\u200db\U0010ffff ')

_numbers = itertools.count(1)


def holds(check):
    """Run ``check(app, value)`` on every drawn value, on one app; it returns whether it took it.

    Both outcomes must turn up, so that neither half of a property goes untested.
    """
    outcomes = set()
    app = create_app(TestingConfig, OVERRIDES)
    try:
        @SETTINGS
        @given(value=TEXT)
        def property_holds(value):
            outcomes.add(check(app, value))

        for value in EXAMPLES:
            property_holds = example(value=value)(property_holds)
        property_holds()
    finally:
        shutdown(app)
    assert outcomes == {True, False}, 'the drawn values were all accepted or all refused'


@contextlib.contextmanager
def clients(app):
    """Yield a function that connects a client to /chat; every one is disconnected after."""
    made = []

    def connect(auth=None):
        client = socketio.test_client(app, namespace=NS, auth=auth)
        made.append(client)
        ((name, greeting),) = received(client)
        assert name == 'my_response'
        client.nick = greeting['nick']
        return client

    try:
        yield connect
    finally:
        for client in made:
            if client.is_connected(NS):
                client.disconnect(namespace=NS)


def as_sent(value):
    """Return ``value`` as the server receives it from a client.

    The test client, like a real one, carries every packet as JSON both ways, and JSON reads an
    escaped surrogate pair back as the one character it encodes.
    """
    return json.loads(json.dumps(value))


def shown(name):
    """Return a name as the server shows it once it accepted it: its PRECIS Nickname form, or,
    for a name PRECIS refuses, the input trimmed (what an accepting server would have shown)."""
    try:
        return NICKNAME.enforce(name.strip())
    except UnicodeEncodeError:
        return name.strip()


def carried(value):
    """Return whether UTF-8 text (a WebSocket frame, SQLite, the page) can hold ``value``.

    JSON escapes a lone surrogate, so the test client carries one either way; but SQLite cannot
    store it and a browser shows it as U+FFFD, so an event that accepts one has not kept it.
    """
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def unique_room():
    return f'room-{next(_numbers)}'


def ask(client, event, payload):
    return client.emit(event, payload, namespace=NS, callback=True)


def received(client):
    return [(e['name'], *e['args']) for e in client.get_received(NS)]


def assert_refused(ack, event, codes, field=None):
    """Assert that ``ack`` refuses ``event`` with one of ``codes``, saying which field if given."""
    assert ack['ok'] is False and ack['event'] == event
    assert ack['error']['code'] in codes
    assert ack['error']['message']
    if field is not None and ack['error']['code'] == 'bad_request':
        assert f'"{field}"' in ack['error']['message']


def drain(*members):
    for client in members:
        received(client)


def join_all(room, *members):
    for client in members:
        assert ask(client, 'join', {'room': room})['ok'] is True
    drain(*members)


def drop_fields(message, *names):
    return {key: value for key, value in message.items() if key not in names}


def test_my_event_data_is_echoed_exactly_or_refused():
    def check(app, data):
        with clients(app) as connect:
            sender, other = connect(), connect()
            ack = ask(sender, 'my_event', {'data': data})
            if ack['ok']:
                assert ack == {'ok': True} and carried(as_sent(data))
                assert received(sender) == [('my_response', {'data': as_sent(data)})]
            else:
                assert_refused(ack, 'my_event', TEXT_CODES, 'data')
                assert received(sender) == []
            assert received(other) == []
            return ack['ok']

    holds(check)


def test_my_broadcast_event_data_reaches_everyone_exactly_or_nobody():
    def check(app, data):
        with clients(app) as connect:
            sender, other = connect(), connect()
            ack = ask(sender, 'my_broadcast_event', {'data': data})
            if ack['ok']:
                assert ack == {'ok': True} and carried(as_sent(data))
                broadcast = ('my_response', {'data': as_sent(data), 'from': sender.nick})
                assert received(sender) == received(other) == [broadcast]
            else:
                assert_refused(ack, 'my_broadcast_event', TEXT_CODES, 'data')
                assert received(sender) == received(other) == []
            return ack['ok']

    holds(check)


def assert_nick_in_use(ana, bob, room, nick):
    """Assert that ``ana`` (in ``room`` with ``bob``) speaks, is listed and is reached as nick."""
    text = f'from {nick}'
    assert ask(ana, 'room_message', {'room': room, 'text': text})['ok'] is True
    for client in (ana, bob):
        ((name, message),) = received(client)
        assert (name, message['nick'], message['text']) == ('chat_message', nick, text)
    (stored,) = ask(bob, 'history', {'room': room})['messages']
    assert stored['nick'] == nick
    members = ask(bob, 'room_members', {'room': room})['members']
    assert members == sorted([nick, bob.nick], key=str.casefold)
    ack = ask(bob, 'direct_message', {'to': nick, 'text': 'psst'})
    assert (ack['ok'], ack['from'], ack['to']) == (True, bob.nick, nick)
    assert received(ana) == [('direct_message', drop_fields(ack, 'ok', 'duplicate'))]
    assert [m['to'] for m in ask(ana, 'direct_history', {})['messages']] == [nick]


def test_set_nick_renames_to_the_precis_form_of_the_input_or_changes_nothing():
    def check(app, nick):
        wanted = shown(as_sent(nick))
        with clients(app) as connect:
            ana, bob = connect(), connect()
            room = unique_room()
            join_all(room, ana, bob)
            ack = ask(ana, 'set_nick', {'nick': nick})
            if ack['ok']:
                assert ack == {'ok': True, 'nick': wanted} and carried(wanted)
                rename = ('room_info', {
                    'kind': 'rename', 'msg': f'{ana.nick} is now known as {wanted}',
                    'room': room, 'nick': wanted, 'previous_nick': ana.nick,
                    'members': sorted([wanted, bob.nick], key=str.casefold), 'owner': wanted,
                })
                assert received(ana) == received(bob) == [rename]
                ana.nick = wanted
            else:
                assert_refused(ack, 'set_nick', NICK_CODES)
                assert received(ana) == received(bob) == []
            assert_nick_in_use(ana, bob, room, ana.nick)
            return ack['ok']

    holds(check)


def test_connect_takes_the_precis_form_of_the_nick_or_a_guest_one():
    def check(app, nick):
        wanted = shown(as_sent(nick))
        with clients(app) as connect:
            bob = connect()
            ana = connect({'nick': nick})
            taken = ana.nick == wanted
            assert carried(ana.nick)
            if not taken:
                assert ana.nick.startswith('guest-')
                # The greeting carries no error, so set_nick says why the nick was passed over.
                assert_refused(ask(ana, 'set_nick', {'nick': nick}), 'set_nick', NICK_CODES)
            room = unique_room()
            join_all(room, ana, bob)
            assert_nick_in_use(ana, bob, room, ana.nick)
            return taken

    holds(check)


def room_property(check):
    """Run ``check(app, room, stored)``, where ``stored`` maps each room name to its texts.

    Hypothesis draws the same name more than once, so what earlier examples stored in a room
    is tracked rather than assumed empty.
    """
    stored = {}
    holds(lambda app, room: check(app, room, stored.setdefault(shown(as_sent(room)), [])))


def join_both(room, ana, bob):
    """Have both clients join ``room``: both are let in or both refused with a documented code."""
    acks = [ask(client, 'join', {'room': room}) for client in (ana, bob)]
    joined = [ack['ok'] for ack in acks]
    if joined != [True, True]:
        assert joined == [False, False]
        for ack in acks:
            assert_refused(ack, 'join', JOIN_CODES)
    drain(ana, bob)
    return joined


def assert_messages(messages, room, texts, first_id=1):
    """Assert that ``messages`` are ``texts`` (nick, text pairs) in ``room``, from ``first_id``."""
    assert [(m['id'], m['room'], m['nick'], m['text']) for m in messages] == [
        (number, room, nick, text) for number, (nick, text) in enumerate(texts, start=first_id)]


def send_and_check(sender, others, room, name, texts):
    """Have ``sender`` say something in ``room``; check who receives it and that it is kept."""
    text = f'message {next(_numbers)}'
    ack = ask(sender, 'room_message', {'room': room, 'text': text})
    assert ack == {'ok': True, 'id': len(texts) + 1, 'room': name, 'duplicate': False}
    texts.append((sender.nick, text))
    for client in (sender, *others):
        ((event, message),) = received(client)
        assert event == 'chat_message'
        assert_messages([message], name, texts[-1:], first_id=ack['id'])
    for client in (sender, *others):
        page = ask(client, 'history', {'room': room, 'since_id': ack['id'] - 1})
        assert_messages(page['messages'], name, texts[-1:], first_id=ack['id'])


def test_join_enters_the_precis_form_of_the_room_or_leaves_no_trace():
    def check(app, room, texts):
        name = shown(as_sent(room))
        with clients(app) as connect:
            ana, bob = connect(), connect()
            ack = ask(ana, 'join', {'room': room})
            if not ack['ok']:
                assert_refused(ack, 'join', JOIN_CODES)
                assert received(ana) == []
                members = ask(bob, 'room_members', {'room': room})
                assert members['ok'] is False or members['members'] == []
                assert ask(ana, 'room_message', {'room': room, 'text': 'hi'})['ok'] is False
                assert ask(ana, 'history', {'room': room})['ok'] is False
                assert received(ana) == received(bob) == []
                return False
            assert carried(name)
            recent = texts[-app.config['HISTORY_LIMIT']:]
            assert drop_fields(ack, 'history') == {
                'ok': True, 'room': name, 'members': [ana.nick], 'owner': ana.nick,
                'more': len(recent) < len(texts)}
            assert_messages(ack['history'], name, recent, first_id=len(texts) - len(recent) + 1)
            joined = {'kind': 'join', 'msg': f'New member joined: {name}', 'room': name}
            assert received(ana) == [
                ('room_info', {**joined, 'nick': ana.nick, 'members': [ana.nick],
                               'owner': ana.nick})]
            assert ask(bob, 'join', {'room': room})['ok'] is True
            both = sorted([ana.nick, bob.nick], key=str.casefold)
            info = ('room_info', {**joined, 'nick': bob.nick, 'members': both, 'owner': ana.nick})
            assert received(ana) == received(bob) == [info]
            send_and_check(ana, [bob], room, name, texts)
            return True

    room_property(check)


def test_room_message_room_is_the_joined_room_or_refused():
    def check(app, room, texts):
        name = shown(as_sent(room))
        with clients(app) as connect:
            ana, bob, outsider = connect(), connect(), connect()
            joined = join_both(room, ana, bob)
            if joined == [True, True]:
                assert carried(name)
                send_and_check(ana, [bob], room, name, texts)
            else:
                ack = ask(ana, 'room_message', {'room': room, 'text': 'hello'})
                assert_refused(ack, 'room_message', ROOM_MESSAGE_CODES)
                assert received(ana) == received(bob) == []
            assert received(outsider) == []
            return joined[0]

    room_property(check)


def test_history_room_reads_the_joined_room_or_is_refused():
    def check(app, room, texts):
        name = shown(as_sent(room))
        with clients(app) as connect:
            ana, outsider = connect(), connect()
            ack = ask(ana, 'join', {'room': room})
            drain(ana)
            if ack['ok']:
                assert carried(name)
                send_and_check(ana, [], room, name, texts)
                page = ask(ana, 'history', {'room': room, 'limit': len(texts)})
                assert page['ok'] is True and page['room'] == name
                assert_messages(page['messages'], name, texts)
            else:
                assert_refused(ack, 'join', JOIN_CODES)
                assert_refused(ask(ana, 'history', {'room': room}), 'history', ROOM_CODES)
            assert_refused(ask(outsider, 'history', {'room': room}), 'history', ROOM_CODES)
            assert received(ana) == received(outsider) == []
            return ack['ok']

    room_property(check)


def test_the_other_room_events_take_the_same_names_as_join():
    def check(app, room, texts):
        name = shown(as_sent(room))
        with clients(app) as connect:
            ana, bob = connect(), connect()
            joined = join_both(room, ana, bob)
            steps = [
                (ana, 'typing', {'room': room, 'typing': True}),
                (ana, 'typing', {'room': room, 'typing': False}),
                (bob, 'room_members', {'room': room}),
                (bob, 'leave', {'room': room}),
                (ana, 'close_room', {'room': room}),
            ]
            for client, event, payload in steps:
                ack = ask(client, event, payload)
                if joined == [True, True]:
                    assert ack['ok'] is True and ack['room'] == name
                else:
                    assert_refused(ack, event, ROOM_CODES)
            if joined == [True, True]:
                assert carried(name)
                typing = {'room': name, 'nick': ana.nick}
                assert received(bob) == [('typing', {**typing, 'typing': True}),
                                         ('typing', {**typing, 'typing': False})]
                assert received(ana) == [
                    ('room_info', {'kind': 'leave', 'msg': f'Member left: {name}', 'room': name,
                                   'nick': bob.nick, 'members': [ana.nick],
                                   'owner': ana.nick}),
                    ('room_info', {'kind': 'close', 'msg': f'Room closing: {name}', 'room': name,
                                   'nick': ana.nick, 'members': [], 'owner': None, 'closing': True}),
                ]
            assert received(ana) == received(bob) == []
            return joined[0]

    room_property(check)


def test_room_message_text_is_delivered_and_kept_exactly_or_refused():
    def check(app, text):
        with clients(app) as connect:
            ana, bob, outsider = connect(), connect(), connect()
            room = unique_room()
            join_all(room, ana, bob)
            ack = ask(ana, 'room_message', {'room': room, 'text': text})
            if ack['ok']:
                assert ack == {'ok': True, 'id': 1, 'room': room, 'duplicate': False}
                assert carried(as_sent(text))
                kept = [(ana.nick, as_sent(text))]
                for client in (ana, bob):
                    ((event, message),) = received(client)
                    assert event == 'chat_message'
                    assert_messages([message], room, kept)
                assert received(outsider) == []
                assert_messages(ask(bob, 'history', {'room': room})['messages'], room, kept)
                assert_messages(ask(outsider, 'join', {'room': room})['history'], room, kept)
            else:
                assert_refused(ack, 'room_message', ROOM_MESSAGE_CODES, 'text')
                assert received(ana) == received(bob) == received(outsider) == []
                assert ask(bob, 'history', {'room': room})['messages'] == []
            return ack['ok']

    holds(check)


def test_direct_message_to_reaches_the_nick_the_input_names_or_is_refused():
    def check(app, to):
        with clients(app) as connect:
            ana, bob = connect(), connect()
            rename = ask(ana, 'set_nick', {'nick': to})
            if not rename['ok']:
                assert_refused(rename, 'set_nick', NICK_CODES)
            ack = ask(bob, 'direct_message', {'to': to, 'text': 'hello'})
            if ack['ok']:
                assert rename['ok'] and carried(as_sent(to))
                assert (ack['from'], ack['to'], ack['text']) == (bob.nick, shown(as_sent(to)),
                                                                 'hello')
                sent = drop_fields(ack, 'ok', 'duplicate')
                assert received(ana) == [('direct_message', sent)]
                for client in (ana, bob):
                    assert ask(client, 'direct_history', {})['messages'] == [sent]
            else:
                assert not rename['ok']
                assert_refused(ack, 'direct_message', DIRECT_CODES)
                assert received(ana) == []
                for client in (ana, bob):
                    assert ask(client, 'direct_history', {})['messages'] == []
            assert received(bob) == []
            return ack['ok']

    holds(check)


def test_direct_message_text_is_delivered_and_kept_exactly_or_refused():
    def check(app, text):
        with clients(app) as connect:
            ana, bob = connect(), connect()
            ack = ask(bob, 'direct_message', {'to': ana.nick, 'text': text})
            if ack['ok']:
                assert carried(as_sent(text))
                sent = drop_fields(ack, 'ok', 'duplicate')
                assert (sent['from'], sent['to'], sent['text']) == (bob.nick, ana.nick,
                                                                    as_sent(text))
                assert ack['duplicate'] is False
                assert received(ana) == [('direct_message', sent)]
                for client in (ana, bob):
                    assert ask(client, 'direct_history', {})['messages'] == [sent]
            else:
                assert_refused(ack, 'direct_message', DIRECT_CODES, 'text')
                assert received(ana) == []
                for client in (ana, bob):
                    assert ask(client, 'direct_history', {})['messages'] == []
            assert received(bob) == []
            return ack['ok']

    holds(check)
