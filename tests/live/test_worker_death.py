"""A worker killed with SIGKILL behind nginx: only its clients move, and they miss nothing.

The real launcher (``python -m deploy.cluster``: its own redis-server, two workers sharing one
SQLite file, nginx in front, a dead worker restarted on its port) and python-socketio clients
that follow the README's resume rule, over WebSocket and long-polling. Each client sends from a
loopback address of its own, chosen so that nginx's ip_hash puts two clients on each worker.
"""
import contextlib
import json
import os
import signal
import time

import pytest

from tests.support.cluster import ClusterProcess
from tests.support.proxy import CuttableProxy
from tests.support.resuming_client import ResumingChatClient

pytestmark = pytest.mark.live

HEARTBEAT = 0.3
ROOM = 'lobby'
VICTIM, SURVIVOR = 'worker-1', 'worker-2'
WHILE_AWAY = 8  # messages sent from the surviving worker right after the kill, 0.1 s apart
MOVED_WITHIN_S = 10.0  # python-socketio retries after 0.1 to 1 s; nginx fails over at once
# The launcher starts the dead worker again after this long, so that its clients, which come
# back within a second, find it down and go to the other worker.
RESTART_DELAY_S = 4.0
RESTARTED_WITHIN_S = RESTART_DELAY_S + 15.0  # run.py starts in a second or two
# nginx's default fail_timeout: how long it keeps sending a dead worker's addresses elsewhere.
NGINX_FAIL_TIMEOUT_S = 10.0
SENT_BACK_WITHIN_S = NGINX_FAIL_TIMEOUT_S + 8.0  # after the kill
TRAFFIC_EVERY_S = 0.5  # a message now and then: each one ends a long-poll request
DELIVERED_WITHIN_S = 10.0
# (nick, transport, worker): two clients on the worker to be killed, two on the other.
CLIENTS = (
    ('Vera', 'websocket', VICTIM),
    ('Vic', 'polling', VICTIM),
    ('Sam', 'websocket', SURVIVOR),
    ('Sue', 'polling', SURVIVOR),
)


def connect_clients(stack, cluster):
    """Each of CLIENTS through a proxy sending from an address that reaches its worker.

    Returns {nick: client}, each client with ``source`` and ``worker`` attributes set.
    """
    sources = cluster.sources_by_worker(per_worker=2)
    nginx = ('127.0.0.1', cluster.port)
    clients = {}
    for nick, transport, worker in CLIENTS:
        source = sources[worker].pop()
        proxy = stack.enter_context(CuttableProxy(nginx, source=source))
        client = stack.enter_context(ResumingChatClient(proxy.url, nick, [transport]))
        client.source, client.worker, client.transport = source, worker, transport
        clients[nick] = client
    return clients


def routes(cluster, clients, expected, timeout=5.0):
    """{nick: socketio_route}, once it is ``expected`` or ``timeout`` s have passed (nginx logs a
    request once it ends)."""
    deadline = time.monotonic() + timeout
    while True:
        logged = {client.nick: cluster.socketio_route(client.source) for client in clients}
        if logged == expected or time.monotonic() > deadline:
            return logged
        time.sleep(0.05)


def record_evidence(path, cluster, clients, acked, killed_at):
    """Write what every client saw and sent where, for a failure's post-mortem."""
    path.write_text(json.dumps({nick: {
        'worker': client.worker, 'source': client.source, 'transport': client.transport,
        'connects': client.connects,
        'connected_at (s after the kill)': [round(at - killed_at, 3)
                                            for at in client.connected_at],
        'disconnect_reasons': [str(reason) for reason in client.disconnect_reasons],
        'room_infos': client.room_infos, 'join_members': client.join_members,
        'live_ids': [message['id'] for message in client.live],
        'delivered_ids': [message['id'] for message in client.delivered(ROOM)],
        'requests (status, upstreams)': [(record.status, record.upstreams)
                                         for record in cluster.access_log()
                                         if record.source == client.source],
    } for nick, client in clients.items()} | {'acked': acked}, indent=1))


def test_a_killed_workers_clients_move_to_another_keep_their_nicks_and_miss_nothing(output_dir):
    cluster = ClusterProcess(output_dir, workers=2,
                             args=('--max-restarts', '1', '--restart-delay', str(RESTART_DELAY_S)),
                             WORKER_HEARTBEAT=HEARTBEAT)
    with cluster, contextlib.ExitStack() as stack:
        clients = connect_clients(stack, cluster)
        moved = [client for client in clients.values() if client.worker == VICTIM]
        stayed = [client for client in clients.values() if client.worker == SURVIVOR]
        sam, vic = clients['Sam'], clients['Vic']
        sessions = {nick: client.session for nick, client in clients.items()}
        for client in clients.values():
            client.join(ROOM)
        acked = []  # (id, text) of every acknowledged message

        def send(client, text):
            ack = client.send(ROOM, text)
            assert ack['ok'] is True, ack
            acked.append((ack['id'], text))
            return time.monotonic()

        for nick, client in clients.items():
            send(client, f'before, from {nick}')
        for client in clients.values():
            client.wait_delivered(ROOM, len(acked), DELIVERED_WITHIN_S)
        for client in clients.values():
            assert set(cluster.socketio_route(client.source)) <= {client.worker}, client.nick
        infos_before = {nick: len(client.room_infos) for nick, client in clients.items()}
        victim_pid = cluster.pid(VICTIM)
        mark = cluster.line_count()

        os.kill(victim_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        try:
            sent_while_away = []
            for n in range(WHILE_AWAY):
                sent_while_away.append(send(sam, f'while away {n}'))
                time.sleep(0.1)
            for client in moved:
                client.wait(lambda c=client: c.rejoins >= 1, f'{client.nick} did not come back',
                            MOVED_WITHIN_S)
            # ... while the dead worker was down.
            assert not any('restarted' in line for line in cluster.lines(mark))
            cluster.wait_for_line(rf'{VICTIM} \(pid \d+\) serving again', RESTARTED_WITHIN_S,
                                  after=mark)
            # Once nginx's fail_timeout is over, ip_hash sends the dead worker's addresses to
            # its successor again. A WebSocket stays where it is; a long-polling client's next
            # request reaches a worker that never heard of its session ("Invalid session",
            # 400), and it reconnects once more, there. (A sticky session by address, not by
            # connection: nothing is lost, but it is one reconnect more than needed.)
            n = 0
            while vic.rejoins < 2:
                assert time.monotonic() < killed_at + SENT_BACK_WITHIN_S, \
                    'the long-polling client was not sent back to the restarted worker'
                send(sam, f'later {n}')
                n += 1
                time.sleep(TRAFFIC_EVERY_S)
            for nick, client in clients.items():
                send(client, f'after, from {nick}')
            for client in clients.values():
                client.wait_delivered(ROOM, len(acked), DELIVERED_WITHIN_S)
            # Long after the dead worker was given up (four heartbeats at most).
            members = sam.call('room_members', {'room': ROOM})
        finally:
            record_evidence(output_dir / 'clients.json', cluster, clients, acked, killed_at)

        assert f'{VICTIM} (pid {victim_pid}, port {cluster.worker_ports[0]}) died: killed by ' \
               'SIGKILL' in cluster.output()
        expected = sorted(acked)
        assert [message_id for message_id, _ in expected] == list(range(1, len(expected) + 1))
        for nick, client in clients.items():
            # Every acknowledged message, in order, once; under the nick and session it had.
            assert [(m['id'], m['text']) for m in client.delivered(ROOM)] == expected, nick
            assert (client.nick, client.session) == (nick, sessions[nick])
        for client in stayed:
            # Never disconnected, and every message arrived live, once: none needed fetching.
            assert client.connects == 1 and client.disconnect_reasons == [], client.nick
            assert sorted(m['id'] for m in client.live) == list(range(1, len(expected) + 1))
        for client in moved:
            # Some of what it missed was sent before it was back.
            assert sent_while_away[0] < client.connected_at[1], client.nick
        assert clients['Vera'].connects == 2, clients['Vera'].disconnect_reasons
        assert vic.connects == 3, vic.disconnect_reasons
        assert vic.connected_at[2] - killed_at > NGINX_FAIL_TIMEOUT_S
        assert members == {'ok': True, 'room': ROOM, 'members': sorted(clients)}

        # Nobody saw anything but the moved clients leave and join, each at most once, and
        # no member list named anyone twice.
        moved_nicks = {client.nick for client in moved}
        for client in clients.values():
            after_kill = client.room_infos[infos_before[client.nick]:]
            seen = [(info['kind'], info['nick']) for info in after_kill]
            assert {kind for kind, _ in seen} <= {'leave', 'join'}, (client.nick, seen)
            assert {nick for _, nick in seen} <= moved_nicks, (client.nick, seen)
            assert len(seen) == len(set(seen)), (client.nick, seen)
            for info in after_kill:
                assert len(info['members']) == len(set(info['members'])), (client.nick, info)

        stack.close()  # the clients disconnect, and nginx logs their WebSockets
        # Each went through nginx to its own worker; the moved ones then to the other worker;
        # the long-polling one back to the restarted worker once nginx tried it again.
        expected_route = {'Vera': [VICTIM, SURVIVOR], 'Vic': [VICTIM, SURVIVOR, VICTIM],
                          'Sam': [SURVIVOR], 'Sue': [SURVIVOR]}
        assert routes(cluster, clients.values(), expected_route) == expected_route
