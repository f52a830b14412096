"""The launcher (``python -m deploy.cluster``) with real redis-server, workers and nginx.

Through nginx: the page, WebSocket and long-polling clients in one room, sticky sessions per
client address spread over both workers; then a clean stop that leaves nothing running, and
what the launcher does when a worker, nginx or redis-server dies.
"""
import os
import re
import signal
import socket
import threading
import time

import pytest
import requests
import socketio

from tests.support.addresses import session_from
from tests.support.cluster import ClusterProcess, running
from tests.support.sio_client import RecordingClient

pytestmark = pytest.mark.live

# Client addresses in four /24s: nginx's ip_hash keys on the first three octets of an IPv4
# address, and the whole of 127/8 is this machine.
SOURCES = ('127.0.0.1', '127.0.1.1', '127.0.2.1', '127.0.3.1')
ELSEWHERE = '127.0.9.1'
STOPPED_WITHIN_S = 30
RESTARTED_WITHIN_S = 40


class PollingClient:
    """python-socketio on /chat over long-polling alone, every request sent from ``source``."""

    def __init__(self, url, source, nick):
        self.source = source
        self.nick = nick
        self.http = session_from(source)
        self.sio = socketio.Client(reconnection=False, http_session=self.http)
        self.messages = []
        self._changed = threading.Condition()
        self.sio.on('chat_message', self._record, namespace='/chat')
        try:
            self.sio.connect(url, namespaces=['/chat'], transports=['polling'],
                             auth={'nick': nick}, wait_timeout=5)
        except BaseException:
            self.http.close()
            raise

    def _record(self, message):
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def call(self, event, data, timeout=5.0):
        return self.sio.call(event, data, namespace='/chat', timeout=timeout)

    def wait_for_messages(self, count, timeout=10.0):
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f'{self.nick} got {len(self.messages)} of {count} messages')
            return list(self.messages)

    def close(self):
        if self.sio.connected:
            self.sio.disconnect()
        self.http.close()


def access_log(cluster):
    """(client address, method, path, status, upstream) of each request nginx logged."""
    return [(record.source, record.method, record.path, record.status, record.upstreams[-1])
            for record in cluster.access_log()]


def assert_all_gone(pids):
    assert pids, 'the launcher reported no pids'
    left = [pid for pid in pids if running(pid)]
    assert not left, f'still running after the launcher exited: {left}'


def test_nginx_serves_page_websocket_and_polling_keeps_each_client_on_one_worker_and_stops_clean(
        output_dir):
    cluster = ClusterProcess(output_dir, workers=2)
    with cluster:
        base = cluster.url
        assert base == f'http://127.0.0.1:{cluster.port}'
        assert set(cluster.pids) == {'redis-server', 'worker-1', 'worker-2', 'nginx'}
        config = (cluster.run_dir / 'nginx.conf').read_text()
        # PING_INTERVAL + PING_TIMEOUT (25 + 20) + 30; MAX_PAYLOAD_BYTES (64 KiB) + 1 MiB.
        assert 'proxy_read_timeout 75s;' in config
        assert f'client_max_body_size {64 * 1024 + 1024 * 1024};' in config

        page = requests.get(f'{base}/', timeout=5)
        assert page.status_code == 200
        assert '<script type="module" src="/static/js/main.js">' in page.text
        assert requests.get(f'{base}/healthz', timeout=5).json() == {
            'status': 'ok', 'store': 'ok', 'queue': 'ok'}
        # Larger than nginx's proxy buffers: streamed whole, with no temp file.
        worker = f'http://127.0.0.1:{cluster.worker_ports[0]}'
        # Metrics are scraped per worker, never through nginx (whose requests a worker would
        # take for loopback's).
        with session_from(ELSEWHERE) as http:
            for path in ('/metrics', '//metrics', '/metrics?x=1'):
                assert http.get(f'{base}{path}', timeout=5).status_code == 404, path
        assert requests.get(f'{worker}/metrics', timeout=5).status_code == 200
        library = requests.get(f'{base}/vendor/socket.io.esm.min.js', timeout=5)
        assert library.status_code == 200
        assert library.content == requests.get(f'{worker}/vendor/socket.io.esm.min.js',
                                               timeout=5).content

        # The workers check Origin against the Host nginx passes on, port included.
        with session_from(ELSEWHERE) as http:
            handshake = f'{base}/socket.io/?EIO=4&transport=polling'
            assert http.get(handshake, headers={'Origin': base}, timeout=5).status_code == 200
            assert http.get(handshake, headers={'Origin': 'http://elsewhere.example'},
                            timeout=5).status_code == 400

        pollers = []
        with RecordingClient(base, ['/chat'], transports=('websocket',),
                             auth={'nick': 'Wes'}) as wes, \
                RecordingClient(base, ['/chat'], transports=('polling', 'websocket'),
                                auth={'nick': 'Uma'}) as uma:
            try:
                for index, source in enumerate(SOURCES):
                    pollers.append(PollingClient(base, source, f'Pol{index}'))
                # Uma's polling handshake and her upgrade to WebSocket reached one worker.
                assert wes.sio.transport() == uma.sio.transport() == 'websocket'
                assert all(poller.sio.transport() == 'polling' for poller in pollers)

                everyone = [wes, uma, *pollers]
                for client in everyone:
                    assert client.call('join', {'room': 'lobby'})['ok'] is True
                for index, client in enumerate(everyone):
                    sent = client.call('room_message', {'room': 'lobby', 'text': f'hi {index}'})
                    assert sent['ok'] is True, sent
                expected = {f'hi {index}' for index in range(len(everyone))}
                for client in (wes, uma):
                    texts = {m['text'] for m in client.wait_for('chat_message', len(everyone),
                                                                timeout=10)}
                    assert texts == expected
                for poller in pollers:
                    assert {m['text'] for m in poller.wait_for_messages(len(everyone))} == \
                        expected
                # The workers trust the nginx in front of them to name each client's address.
                for poller in pollers:
                    cluster.wait_for_line(rf'chat client connected: {poller.nick} from '
                                          rf'{re.escape(poller.source)}\b', 5)
            finally:
                for poller in pollers:
                    poller.close()

        # Every request of a polling client reached one worker and succeeded (another worker
        # would have answered 400, unknown session), and the addresses spread over both.
        requests_by_source = {}
        for source, _method, path, status, upstream in access_log(cluster):
            if path.startswith('/socket.io/') and source in SOURCES[1:]:
                requests_by_source.setdefault(source, []).append((status, upstream))
        workers = {f'127.0.0.1:{port}' for port in cluster.worker_ports}
        chosen = {}
        for source in SOURCES[1:]:
            logged = requests_by_source[source]
            assert len(logged) >= 4, logged  # handshake, connect, join, message, polls
            # 499: a client that closed its last poll itself; never 400.
            assert {status for status, _ in logged} <= {'200', '499'}, logged
            upstreams = {upstream for _, upstream in logged}
            assert len(upstreams) == 1 and upstreams <= workers, logged
            chosen[source] = upstreams.pop()
        local = {upstream for source, *_, upstream in access_log(cluster)
                 if source == '127.0.0.1'}
        assert len(local) == 1
        assert set(chosen.values()) | local == workers, 'ip_hash sent every address to one worker'

        pids = cluster.all_pids()
        assert len(pids) >= 5  # redis, two workers, nginx's master and at least one worker
        code = cluster.stop(STOPPED_WITHIN_S)
    assert code == 0, cluster.output()
    assert_all_gone(pids)
    output = cluster.output()
    assert 'unexpectedly' not in output and 'killing it' not in output
    assert output.count('Chat cluster ready') == 1


def test_a_killed_worker_is_restarted_on_its_port_and_one_dying_too_often_stops_everything(
        output_dir, redis_url):
    cluster = ClusterProcess(output_dir, workers=2, args=('--max-restarts', '1'),
                             MESSAGE_QUEUE=redis_url)
    with cluster:
        assert 'redis-server' not in cluster.pids  # MESSAGE_QUEUE given: no Redis of its own
        port = cluster.worker_ports[1]
        first = cluster.pid('worker-2')
        mark = cluster.line_count()
        os.kill(first, signal.SIGKILL)
        cluster.wait_for_line(rf'worker-2 \(pid {first}, port {port}\) died: killed by SIGKILL',
                              10, after=mark)
        cluster.wait_for_line(r'worker-2 \(pid \d+\) serving again on', RESTARTED_WITHIN_S,
                              after=mark)
        second = cluster.pid('worker-2')
        assert second != first and running(second)

        # The new worker is part of the cluster again: its clients and nginx's meet in a room.
        with RecordingClient(f'http://127.0.0.1:{port}', ['/chat'],
                             auth={'nick': 'Direct'}) as direct, \
                RecordingClient(cluster.url, ['/chat'], auth={'nick': 'Proxied'}) as proxied:
            for client in (direct, proxied):
                assert client.call('join', {'room': 'lobby'})['ok'] is True
            assert proxied.call('room_message', {'room': 'lobby', 'text': 'back?'})['ok']
            assert direct.wait_for('chat_message')[0]['text'] == 'back?'
        for source in SOURCES:
            with session_from(source) as http:
                assert http.get(f'{cluster.url}/healthz', timeout=5).status_code == 200

        pids = cluster.all_pids()
        mark = cluster.line_count()
        os.kill(second, signal.SIGKILL)
        cluster.wait_for_line(r'worker-2 died 2 times within 60 s, more than --max-restarts 1; '
                              'stopping the cluster', 10, after=mark)
        code = cluster.wait(STOPPED_WITHIN_S)
    assert code == 1
    assert_all_gone(pids)
    assert 'cluster stopped after a failure' in cluster.output()


def test_a_restart_delay_keeps_a_dead_worker_down_that_long_and_a_stop_meanwhile_is_clean(
        output_dir):
    delay = 2.0
    cluster = ClusterProcess(output_dir, workers=2, args=('--restart-delay', str(delay)))
    with cluster:
        mark = cluster.line_count()
        os.kill(cluster.pid('worker-2'), signal.SIGKILL)
        killed_at = time.monotonic()
        cluster.wait_for_line(r'restarting worker-2 in 2 s', 10, after=mark)
        cluster.wait_for_line(r'restarted worker-2 \(pid \d+\)', RESTARTED_WITHIN_S, after=mark)
        assert time.monotonic() - killed_at >= delay
        cluster.wait_for_line(r'worker-2 \(pid \d+\) serving again', RESTARTED_WITHIN_S,
                              after=mark)

        # Asked to stop while a worker waits for its restart: it is not started again, and
        # nothing is left behind.
        pids = cluster.all_pids()
        mark = cluster.line_count()
        os.kill(cluster.pid('worker-2'), signal.SIGKILL)
        cluster.wait_for_line(r'restarting worker-2 in 2 s', 10, after=mark)
        code = cluster.stop(STOPPED_WITHIN_S)
    assert code == 0, cluster.output()
    assert_all_gone(pids)
    assert not any('restarted' in line for line in cluster.lines(mark))


@pytest.mark.parametrize('part', ['nginx', 'redis-server'])
def test_nginx_or_redis_dying_stops_the_cluster_with_exit_1(output_dir, part):
    cluster = ClusterProcess(output_dir, workers=2)
    with cluster:
        pids = cluster.all_pids()
        victim = cluster.pid(part)
        os.kill(victim, signal.SIGKILL)
        cluster.wait_for_line(rf'{part} \(pid {victim}\) exited unexpectedly \(killed by '
                              r'SIGKILL\); stopping the cluster', 10)
        code = cluster.wait(STOPPED_WITHIN_S)
    assert code == 1
    assert_all_gone(pids)


def test_a_port_in_use_is_reported_and_nothing_is_started(output_dir):
    cluster = ClusterProcess(output_dir, workers=2)
    with socket.create_server(('127.0.0.1', cluster.worker_ports[1])):
        cluster.launch()
        try:
            code = cluster.wait(STOPPED_WITHIN_S)
        finally:
            cluster.kill()
    assert code == 1
    assert f'in use already: 127.0.0.1:{cluster.worker_ports[1]}' in cluster.output()
    assert cluster.pids == {}


def test_a_killed_launcher_takes_its_children_with_it(output_dir):
    cluster = ClusterProcess(output_dir, workers=2)
    with cluster:
        pids = cluster.all_pids()
        cluster.process.kill()
        assert cluster.wait(STOPPED_WITHIN_S) == -signal.SIGKILL
        # Linux sends each child SIGTERM when the launcher dies; they stop on their own.
        deadline = time.monotonic() + STOPPED_WITHIN_S
        while any(running(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert_all_gone(pids)
