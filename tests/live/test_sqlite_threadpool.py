"""run.py on SQLite: a write waiting for the file lock waits in a thread, not on the gevent loop."""
import concurrent.futures
import sqlite3
import time

import pytest

from tests.support.live_server import LiveServer
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live


def test_a_write_waiting_for_the_file_lock_holds_up_no_one_else(output_dir):
    path = output_dir / 'chat.db'
    with LiveServer(output_dir / 'server.log', DATABASE_URL=f'sqlite:///{path}') as server, \
            RecordingClient(server.url, ['/chat']) as ana, \
            RecordingClient(server.url, ['/chat']) as bob, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        ana.call('join', {'room': 'lobby'})
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute('BEGIN IMMEDIATE')  # another worker on this machine is writing
        try:
            slow = pool.submit(ana.call, 'room_message', {'room': 'lobby', 'text': 'waits'},
                               timeout=10)
            time.sleep(0.3)  # ana's send reaches the server and waits for the lock
            started = time.monotonic()
            for _ in range(3):
                assert bob.call('my_event', {'data': 'hello'}, timeout=2)['ok'] is True
            assert time.monotonic() - started < 1.0
            assert not slow.done()
        finally:
            holder.execute('ROLLBACK')
            holder.close()
        assert slow.result(10)['id'] == 1
