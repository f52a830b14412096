"""Socket.IO's JSON module: orjson's speed, the standard library's meaning."""
import json

import pytest

from server import jsonwire


@pytest.mark.parametrize('value', [
    {'data': 'echo', 'n': 1, 'ok': True, 'none': None, 'list': [1.5, 'é', '😀']},
    ['my_event', {'text': 'line\nbreak "quoted" <b>markup</b>'}],
    'a lone surrogate \ud800 the standard library accepts',
    2 ** 70,  # beyond orjson's integers
])
def test_what_is_encoded_decodes_to_the_same_value(value):
    assert jsonwire.loads(jsonwire.dumps(value, separators=(',', ':'))) == value


def test_encoding_is_compact_as_socketio_asks():
    assert jsonwire.dumps({'a': [1, 2]}) == '{"a":[1,2]}'


def test_decoding_accepts_what_the_standard_library_accepts():
    text = '["x",{"t":"\\ud800"}]'  # an escaped lone surrogate: orjson refuses it
    assert jsonwire.loads(text) == json.loads(text)


def test_undecodable_text_is_still_a_value_error():
    with pytest.raises(ValueError):
        jsonwire.loads('{"unterminated"')
