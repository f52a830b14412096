"""A client that follows the README's resume rule misses nothing while others send fast."""
import threading
import time
from urllib.parse import urlsplit

import pytest

from tests.support.live_server import LiveServer
from tests.support.proxy import CuttableProxy
from tests.support.resuming_client import ResumingChatClient
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live

ROOM = 'busy'
MISSED = 450  # sent before the reader joins: more than two of the server's pages (200)
DURING = 300  # sent while the reader catches up, drops and catches up again


@pytest.fixture
def fast_server(output_dir):
    """A server whose rate limit lets one client send as fast as it can."""
    with LiveServer(output_dir / 'server.log', RATE_LIMIT_PER_SECOND='100000',
                    RATE_LIMIT_BURST='100000', FLOOD_STRIKES='100000') as server:
        yield server


def cut_until_dropped(network, client, within=10.0):
    """Cut the client's connections until it notices (a long-polling client between two
    requests just opens a new connection, and notices nothing)."""
    drops = len(client.disconnect_reasons)
    deadline = time.monotonic() + within
    while len(client.disconnect_reasons) == drops:
        assert time.monotonic() < deadline, 'the client never noticed the network cut'
        network.cut()
        time.sleep(0.05)


def send_all(sender, texts):
    for text in texts:
        assert sender.call('room_message', {'room': ROOM, 'text': text})['ok'] is True


@pytest.mark.parametrize('transport', ['websocket', 'polling'])
def test_a_drop_during_a_busy_catch_up_loses_and_repeats_nothing(fast_server, transport):
    texts = [f'm{n}' for n in range(1, 1 + MISSED + DURING)]
    address = urlsplit(fast_server.url)
    with CuttableProxy((address.hostname, address.port)) as network, \
            RecordingClient(fast_server.url, ['/chat']) as sender:
        sender.call('join', {'room': ROOM})
        send_all(sender, texts[:MISSED])
        during = threading.Thread(target=send_all, args=(sender, texts[MISSED:]))
        with ResumingChatClient(network.url, 'Reader', [transport]) as reader:
            during.start()
            try:
                reader.join(ROOM)  # from id 0: pages of 200 while the sender goes on
                reader.wait_delivered(ROOM, 100)
                cut_until_dropped(network, reader)  # mid catch-up: it comes back, goes on
                reader.wait(lambda: reader.rejoins >= 1, 'no rejoin after the drop')
            finally:
                during.join(60)
            delivered = reader.wait_delivered(ROOM, len(texts), timeout=60)
            assert [m['id'] for m in delivered] == list(range(1, len(texts) + 1))
            assert [m['text'] for m in delivered] == texts
            assert reader.nick == 'Reader'
