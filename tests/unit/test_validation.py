"""Input checks, without sockets."""
import unicodedata

import pytest

from server.chat import validation
from server.errors import ClientError


def refused(call, *args):
    with pytest.raises(ClientError) as caught:
        call(*args)
    return caught.value.code


@pytest.mark.parametrize('payload', [None, 'lobby', 42, ['lobby'], True])
def test_payload_must_be_an_object(payload):
    assert refused(validation.room_name, payload, 64) == 'bad_request'


@pytest.mark.parametrize('payload', [{}, {'room': None}, {'room': 5}, {'room': ['a']}, {'rom': 'a'}])
def test_room_must_be_a_string(payload):
    assert refused(validation.room_name, payload, 64) == 'bad_request'


@pytest.mark.parametrize('room', ['', '   ', 'x' * 65, 'a\x00b', 'tab\there', 'new\nline', 'rtl\u202eoverride'])
def test_bad_room_names_are_refused(room):
    assert refused(validation.room_name, {'room': room}, 64) == 'invalid_room'


@pytest.mark.parametrize('room', ['\udfff', 'a\ud800b', ' \udc00 ', '\ud83d'])
def test_room_names_with_lone_surrogates_are_refused(room):
    assert refused(validation.room_name, {'room': room}, 64) == 'invalid_room'


def test_room_name_is_trimmed_and_may_be_unicode_up_to_the_limit():
    assert validation.room_name({'room': '  café  '}, 64) == 'café'
    assert validation.room_name({'room': 'x' * 64}, 64) == 'x' * 64


@pytest.mark.parametrize('text, code', [
    ('', 'empty_message'),
    (' \n\t ', 'empty_message'),
    ('x' * 2001, 'message_too_long'),
    ('bell\x07', 'bad_request'),
    (7, 'bad_request'),
    (None, 'bad_request'),
])
def test_bad_message_text_is_refused(text, code):
    assert refused(validation.message_text, {'text': text}, 'text', 2000) == code


@pytest.mark.parametrize('text', ['\ud800', 'ok \udfff', 'cut emoji \ud83d', '\ude00 tail'])
def test_message_text_with_lone_surrogates_is_refused_naming_the_field(text):
    with pytest.raises(ClientError) as caught:
        validation.message_text({'data': text}, 'data', 2000)
    assert caught.value.code == 'bad_request'
    assert '"data"' in caught.value.message and 'surrogate' in caught.value.message


def test_message_text_keeps_newlines_markup_and_emoji_sequences():
    text = 'line one\n<b>two</b>\t👨\u200d👩\u200d👧'
    assert validation.message_text({'text': text}, 'text', 2000) == text
    assert validation.message_text({'text': 'x' * 2000}, 'text', 2000) == 'x' * 2000


@pytest.mark.parametrize('nick', ['', '  ', 'n' * 33, 'tab\tnick', 'zero\u200bwidth'])
def test_bad_nicks_are_refused(nick):
    assert refused(validation.nick, {'nick': nick}, 'nick', 32) == 'invalid_nick'


@pytest.mark.parametrize('nick', ['x\udc00', '\udbff', ' \ud800 '])
def test_nicks_with_lone_surrogates_are_refused(nick):
    assert refused(validation.nick, {'nick': nick}, 'nick', 32) == 'invalid_nick'


@pytest.mark.parametrize('text', ['😀', '\ue000', '\U0010fffd', '\uffff', '\U000e0fff', 'x\ufdd0'])
def test_message_text_keeps_astral_private_use_unassigned_and_noncharacters(text):
    assert validation.message_text({'text': text}, 'text', 2000) == text


def test_names_keep_astral_characters():
    assert validation.room_name({'room': '😀 room'}, 64) == '😀 room'
    assert validation.nick({'nick': 'ana 😀'}, 'nick', 32) == 'ana 😀'


@pytest.mark.parametrize('name, code_point', [
    ('\ue000', 'U+E000'), ('ana\U0010fffd', 'U+10FFFD'), ('\uffff', 'U+FFFF'),
    ('\U000e0fff', 'U+E0FFF'), ('x\ufdd0', 'U+FDD0'), ('\u0378x', 'U+0378'),
])
def test_names_refuse_private_use_unassigned_and_noncharacters_saying_which(name, code_point):
    for check, code, what in ((lambda: validation.room_name({'room': name}, 64),
                               'invalid_room', 'the room name'),
                              (lambda: validation.nick({'nick': name}, 'nick', 32),
                               'invalid_nick', 'the nick')):
        with pytest.raises(ClientError) as caught:
            check()
        assert caught.value.code == code
        assert caught.value.message.startswith(f'{what} may not contain {code_point}')


def test_nicks_are_trimmed():
    assert validation.nick({'nick': '  Ana  '}, 'nick', 32) == 'Ana'


@pytest.mark.parametrize('sent, shown', [
    ('ａｌｉｃｅ', 'alice'), ('ＡＬＩＣＥ', 'ALICE'), ('ali\u0301ce', 'alíce'),
    ('Ana\u00a0\u3000 Maria', 'Ana Maria'), ('ｌｏｂｂｙ', 'lobby'), ('ⅿe', 'me'),
])
def test_names_are_shown_in_their_precis_form(sent, shown):
    assert validation.nick({'nick': sent}, 'nick', 32) == shown
    assert validation.room_name({'room': sent}, 64) == shown


def test_a_name_that_normalizes_past_the_limit_is_refused():
    assert validation.nick({'nick': '\ufdfa'}, 'nick', 32) == 'صلى الله عليه وسلم'
    assert refused(validation.nick, {'nick': '\ufdfa' * 2}, 'nick', 32) == 'invalid_nick'


@pytest.mark.parametrize('value', [-1, 1.5, '3', True, 2 ** 63])
def test_ids_must_be_whole_numbers_sqlite_can_hold(value):
    assert refused(validation.optional_id, {'since_id': value}, 'since_id') == 'bad_request'


def test_absent_optional_values_give_defaults():
    assert validation.optional_id({}, 'since_id') is None
    assert validation.optional_limit({}, 50, 200) == 50
    assert validation.optional_client_id({}) is None
    assert validation.optional_id({'since_id': 0}, 'since_id') == 0


@pytest.mark.parametrize('limit', [0, -3, 'ten', False, 2.5])
def test_limits_must_be_whole_and_positive(limit):
    assert refused(validation.optional_limit, {'limit': limit}, 50, 200) == 'bad_request'


def test_limits_are_capped_at_the_page_size():
    assert validation.optional_limit({'limit': 500}, 50, 200) == 200
    assert validation.optional_limit({}, 300, 200) == 200


@pytest.mark.parametrize('client_id', ['', 'x' * 65, 'has space', '<script>', 7])
def test_bad_client_ids_are_refused(client_id):
    assert refused(validation.optional_client_id, {'client_id': client_id}) == 'bad_request'


def test_typing_flag_must_be_a_bool():
    assert validation.require_bool({'typing': True}, 'typing') is True
    assert refused(validation.require_bool, {'typing': 'yes'}, 'typing') == 'bad_request'


def test_no_printable_character_is_in_a_forbidden_category():
    """The check skips text that str.isprintable() passes: that holds only while no character
    it calls printable is in a category refused anywhere (a Unicode upgrade could change it)."""
    forbidden = (validation._TEXT_FORBIDDEN | validation._NAME_FORBIDDEN
                 | validation._SURROGATE)
    printable_but_forbidden = [hex(code) for code in range(0x110000)
                               if chr(code).isprintable()
                               and unicodedata.category(chr(code)) in forbidden]
    assert printable_but_forbidden == []
