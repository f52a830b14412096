"""What server/namespaces/internals.py relies on in python-socketio and python-engineio.

These are private parts of the pinned versions; if an upgrade changes any of them, this fails
before anything subtler does, and internals.py is the one module to adapt.
"""
import hashlib
import inspect
import logging
import time

import engineio
import engineio.async_drivers.gevent
import engineio.packet
import engineio.payload
import engineio.socket
import pytest
import socketio

import geventwebsocket.utf8validator
import geventwebsocket.websocket
from geventwebsocket.websocket import Header, WebSocket
from redis.backoff import NoBackoff
from redis.retry import Retry

from server.namespaces import internals
from server.namespaces.internals import (CountedDeliveries, IndexedManager,
                                         OrderedRedisManager, count_traffic, in_room,
                                         unmask_frames_in_c)
from tests.support.live_server import free_port


WEBSOCKET_HANDLER_SHA256 = '58afe122719282de1def07b5530c154fbf41a40481bc8a787c4eb7d94db56c9c'


def parameters(function):
    return list(inspect.signature(function).parameters)


def test_the_socketio_server_methods_that_are_wrapped_keep_their_shape():
    assert parameters(socketio.Server._handle_eio_message) == ['self', 'eio_sid', 'data']
    assert parameters(socketio.Server._handle_event_internal) == [
        'self', 'server', 'sid', 'eio_sid', 'data', 'namespace', 'id']
    source = inspect.getsource(socketio.Server._handle_event)
    assert 'self._handle_event_internal(self, sid, eio_sid, data' in source


def test_the_engineio_server_keeps_its_sockets_and_a_non_blocking_close():
    server = engineio.Server(async_mode='threading')
    assert server.sockets == {}
    assert parameters(internals._ENGINEIO_CLOSE) == ['self', 'wait', 'abort', 'reason']
    assert server.reason.TRANSPORT_CLOSE == 'transport close'
    assert server.reason.SERVER_DISCONNECT == 'server disconnect'


def test_in_room_reads_the_managers_rooms_by_namespace_room_and_sid():
    server = socketio.Server(async_mode='threading')
    manager = server.manager
    manager.set_server(server)
    manager.initialize()
    sid = manager.connect('eio-1', '/chat')
    manager.enter_room(sid, '/chat', 'room:lobby')
    assert in_room(server, sid, '/chat', 'room:lobby')
    assert not in_room(server, sid, '/chat', 'room:elsewhere')
    assert not in_room(server, sid, '/nowhere', 'room:lobby')


def test_every_emit_a_redis_manager_delivers_passes_through_handle_emit():
    assert parameters(socketio.RedisManager._handle_emit) == ['self', 'message']
    # Its own emits are delivered there at once, the other workers' as they come off the queue.
    assert 'self._handle_emit(message)' in inspect.getsource(socketio.PubSubManager.emit)
    assert 'self._handle_emit(data)' in inspect.getsource(socketio.PubSubManager._thread)
    # The message carries what the ordering reads: the event, namespace, room and data list.
    source = inspect.getsource(socketio.PubSubManager.emit)
    assert "message = {'method': 'emit', 'event': event, 'data': data," in source
    assert "'namespace': namespace, 'room': room," in source


def test_an_emit_may_skip_the_queue_and_be_delivered_here():
    source = inspect.getsource(socketio.PubSubManager.emit)
    assert "if kwargs.get('ignore_queue'):" in source
    assert parameters(socketio.PubSubManager.emit)[:8] == [
        'self', 'event', 'data', 'namespace', 'room', 'skip_sid', 'callback', 'to']


def test_gevent_websocket_unmasks_each_frame_through_its_header_and_validates_with_wsaccel():
    assert 'payload = header.unmask_payload(payload)' in inspect.getsource(WebSocket.read_frame)
    assert geventwebsocket.utf8validator.Utf8Validator.__module__ == 'wsaccel.utf8validator'
    unmask_frames_in_c()
    header = Header(length=9)
    header.mask = b'\x01\x02\x03\x04'
    masked = bytes(b ^ header.mask[i % 4] for i, b in enumerate(b'relay rox'))
    assert bytes(header.unmask_payload(masked)) == b'relay rox'


def test_gevent_websocket_builds_its_websocket_by_the_module_name_and_reads_frames_so():
    import geventwebsocket.handler
    handler_source = inspect.getsource(geventwebsocket.handler.WebSocketHandler)
    assert 'self.websocket = WebSocket(self.environ, Stream(self), self)' in handler_source
    reader = inspect.getsource(WebSocket.read_frame)
    for step in ('header = Header.decode_header(self.stream)', 'if header.flags:',
                 'payload = self.raw_read(header.length)', 'header.unmask_payload(payload)'):
        assert step in reader, step
    assert 'self.close()' in inspect.getsource(WebSocket.receive)  # a socket error ends it


def test_engineio_writers_stop_at_the_marker_close_puts_and_lapsed_clients_are_closed():
    poll = inspect.getsource(internals._ENGINEIO_POLL)  # create_app replaces Socket.poll
    assert 'self.queue.get(' in poll and 'if packets == [None]:' in poll
    assert 'self.queue.put(None)' in inspect.getsource(internals._ENGINEIO_CLOSE)
    assert engineio.Server(async_mode='threading').start_service_task is True
    assert 'check_ping_timeout' in inspect.getsource(engineio.Server._service_task)


def test_python_socketio_managers_keep_rooms_as_the_indexed_rooms_mirror_them():
    source = inspect.getsource(socketio.base_manager.BaseManager.basic_disconnect)
    for step in ('for room_name, room in self.rooms[namespace].copy().items():',
                 'self.basic_leave_room(sid, namespace, room)', 'del self.callbacks[sid]',
                 'self.pending_connect[namespace].remove(sid)',
                 'self.pending_disconnect[namespace].remove(sid)'):
        assert step in source, step
    connect = inspect.getsource(socketio.base_manager.BaseManager.pre_connect)
    assert 'self.basic_enter_room(sid, namespace, None, eio_sid=eio_sid)' in connect
    assert 'self.basic_enter_room(sid, namespace, sid, eio_sid=eio_sid)' in connect


def test_a_disconnect_leaves_every_room_of_the_client_and_no_other():
    server = socketio.Server(async_mode='threading', client_manager=IndexedManager())
    manager = server.manager
    manager.initialize()
    leaving, staying = manager.connect('eio-1', '/chat'), manager.connect('eio-2', '/chat')
    for sid in (leaving, staying):
        manager.enter_room(sid, '/chat', 'room:lobby')
    manager.enter_room(leaving, '/chat', 'room:games')
    manager.callbacks[leaving] = {1: print}
    manager.disconnect(leaving, '/chat')
    assert manager.get_rooms(leaving, '/chat') == []
    assert 'room:games' not in manager.rooms['/chat'] and leaving not in manager.callbacks
    assert [sid for sid, _ in manager.get_participants('/chat', 'room:lobby')] == [staying]
    assert sorted(filter(None, manager.get_rooms(staying, '/chat'))) == sorted(
        ['room:lobby', staying])
    assert manager._rooms_by_client() == {('/chat', staying): {
        None: None, staying: None, 'room:lobby': None}}


def test_engineio_sockets_queue_what_they_send():
    send = inspect.getsource(internals._ENGINEIO_SEND)  # create_app replaces Socket.send
    assert 'self.queue.put(pkt)' in send
    assert parameters(internals._ENGINEIO_SEND) == ['self', 'pkt']
    assert 'packets = self.poll()' in inspect.getsource(engineio.socket.Socket.handle_get_request)


def test_watch_connections_sees_each_connection_open_and_close_around_python_socketio():
    server = socketio.Server(async_mode='threading')
    assert parameters(socketio.Server._handle_eio_connect) == ['self', 'eio_sid', 'environ']
    assert parameters(socketio.Server._handle_eio_disconnect) == ['self', 'eio_sid', 'reason']
    seen = []
    internals.watch_connections(server, lambda eio_sid, environ: seen.append(('open', eio_sid)),
                                lambda eio_sid: seen.append(('closed', eio_sid)))
    server.eio._trigger_event('connect', 'eio-1', {'REMOTE_ADDR': '192.0.2.1'})
    assert server.environ['eio-1'] == {'REMOTE_ADDR': '192.0.2.1'}  # python-socketio's own ran
    server.eio._trigger_event('disconnect', 'eio-1', 'transport close')
    assert 'eio-1' not in server.environ
    assert seen == [('open', 'eio-1'), ('closed', 'eio-1')]


def test_a_binary_packet_in_progress_is_kept_with_its_announced_and_received_attachments():
    server = socketio.Server(async_mode='threading')
    server.manager.set_server(server)
    server.manager.initialize()
    server.manager.connect('eio-1', '/chat')
    assert internals.pending_attachments(server, 'eio-1') is None
    server._handle_eio_message('eio-1', '52-/chat,["x",{"_placeholder":true,"num":0},'
                                        '{"_placeholder":true,"num":1}]')
    assert internals.pending_attachments(server, 'eio-1') == (2, [])
    server._handle_eio_message('eio-1', b'abc')
    assert internals.pending_attachments(server, 'eio-1') == (2, [b'abc'])


class Recorder:
    """Records what a manager counts (the part of server.metrics.Metrics it calls)."""

    def __init__(self):
        self.emits, self.deliveries, self.publish_failures = [], [], 0

    def emitted(self, event):
        self.emits.append(event)

    def delivered(self, event, recipients):
        self.deliveries.append((event, recipients))

    def publish_failed(self):
        self.publish_failures += 1


def counting_server(manager):
    """A python-socketio server on ``manager``, counting into a Recorder, its Engine.IO sends
    recorded, with three clients of /chat, two of them in one room."""
    server = socketio.Server(async_mode='threading', client_manager=manager)
    recorder = Recorder()
    count_traffic(server, recorder)
    sent = []
    server._send_eio_packet = lambda eio_sid, packet: sent.append(eio_sid)
    sids = [manager.connect(f'eio-{n}', '/chat') for n in range(3)]
    for sid in sids[:2]:
        manager.enter_room(sid, '/chat', 'room:lobby')
    return server, recorder, sent, sids


def test_an_emit_counts_once_and_as_many_deliveries_as_python_socketio_sends():
    server, recorder, sent, sids = counting_server(IndexedManager())
    server.emit('room_info', {}, namespace='/chat', to='room:lobby', skip_sid=sids[0])
    server.emit('my_response', {}, namespace='/chat')
    server.emit('typing', {}, namespace='/chat', room='room:lobby', skip_sid=[sids[1], 'gone'])
    server.emit('chat_message', {}, namespace='/chat', to='room:empty')
    server.emit('my_response', {}, namespace='/nowhere')
    assert recorder.emits == ['room_info', 'my_response', 'typing', 'chat_message',
                              'my_response']
    assert recorder.deliveries == [('room_info', 1), ('my_response', 3), ('typing', 1),
                                   ('chat_message', 0), ('my_response', 0)]
    assert len(sent) == sum(n for _, n in recorder.deliveries) == 5


def test_python_socketio_delivers_every_emit_through_the_managers_emit():
    # Deliveries are counted right above Manager.emit, which every emit a worker delivers to
    # its own clients must go through: its own, and with a queue the other workers' too.
    assert 'for sid, eio_sid in self.get_participants(namespace, room):' in inspect.getsource(
        socketio.Manager.emit)
    assert 'super().emit(' in inspect.getsource(socketio.PubSubManager._handle_emit)
    assert 'return super().emit(' in inspect.getsource(socketio.PubSubManager.emit)
    order = OrderedRedisManager.__mro__
    assert order.index(socketio.PubSubManager) < order.index(CountedDeliveries) < order.index(
        socketio.Manager)


def test_another_workers_emit_counts_its_deliveries_here_but_not_as_an_emit_of_this_one():
    manager = OrderedRedisManager('redis://127.0.0.1:1/0', numbered=lambda message: None,
                                  sequencer=None)
    _, recorder, sent, _ = counting_server(manager)
    manager._handle_emit({'method': 'emit', 'event': 'room_info', 'data': [{}],
                          'namespace': '/chat', 'room': 'room:lobby', 'skip_sid': None,
                          'callback': None, 'host_id': 'another worker'})
    assert recorder.emits == [] and recorder.deliveries == [('room_info', 2)]
    assert len(sent) == 2


def test_the_redis_manager_returns_nothing_from_a_publish_it_gave_up():
    source = inspect.getsource(socketio.RedisManager._publish)
    assert 'return self.redis.publish(self.channel' in source
    assert "'Cannot publish to redis... giving up'" in source


def test_a_publish_the_redis_manager_gives_up_is_counted_and_one_it_made_is_not(redis_url):
    nowhere = f'redis://127.0.0.1:{free_port()}/0'  # nothing listens there
    failing = OrderedRedisManager(nowhere, numbered=lambda message: None, sequencer=None,
                                  redis_options={'socket_connect_timeout': 1,
                                                 'retry': Retry(NoBackoff(), 0)},
                                  logger=logging.getLogger('test.queue'))
    failed = counting_server(failing)[1]
    assert failing._publish({'method': 'emit'}) is None
    assert failed.publish_failures == 1
    working = OrderedRedisManager(redis_url, numbered=lambda message: None, sequencer=None)
    published = counting_server(working)[1]
    try:
        assert working._publish({'method': 'emit'}) == 0  # published, to no subscriber
    finally:
        working.redis.close()
    assert published.publish_failures == 0


def test_the_websocket_handler_replaced_is_the_one_adapted_and_what_it_writes_with_holds():
    # internals._websocket_handler is engineio 4.15.1's, with its writer replaced: a change
    # to engineio's must be looked at (and this hash renewed) before an upgrade.
    source = inspect.getsource(internals._ENGINEIO_WEBSOCKET_HANDLER)
    assert hashlib.sha256(source.encode()).hexdigest() == WEBSOCKET_HANDLER_SHA256
    ping = inspect.getsource(engineio.socket.Socket._send_ping)
    assert 'self.server.sleep(self.server.ping_interval)' in ping
    assert 'self.last_ping = time.time()' in ping
    assert 'if self.last_ping:' in inspect.getsource(internals._ENGINEIO_SCHEDULE_PING)
    # The Pinger's stamps are read by _check_ping_timeout, engineio's own on another clock.
    check = inspect.getsource(internals._ENGINEIO_CHECK_PING_TIMEOUT)
    assert 'time.time() - last_ping > self.server.ping_timeout' in check
    assert 'last_ping' not in inspect.getsource(engineio.Server)
    assert 'self.queue.put(None)' in inspect.getsource(internals._ENGINEIO_CLOSE)
    stream = inspect.getsource(geventwebsocket.websocket.Stream)
    assert 'self.handler = handler' in stream and 'handler.socket.sendall' in stream
    driver = engineio.async_drivers.gevent
    assert driver.SimpleWebSocketWSGI is None  # engineio wraps gevent-websocket's WebSocket
    assert "self._sock = environ['wsgi.websocket']" in inspect.getsource(
        driver.WebSocketWSGI.__call__)


def test_a_frame_is_written_as_gevent_websocket_writes_it():
    text = internals._frame(engineio.packet.Packet(engineio.packet.MESSAGE, data='2["x"]'))
    assert text == b'\x81\x07' + b'42["x"]'
    binary = internals._frame(engineio.packet.Packet(engineio.packet.MESSAGE, data=b'\x00' * 300))
    assert binary[:4] == b'\x82\x7e\x01\x2c' and len(binary) == 304


def test_a_packet_sent_to_a_whole_room_is_framed_once():
    packet = engineio.packet.Packet(engineio.packet.MESSAGE, data='2["chat_message",{}]')
    first = internals._frame(packet)
    assert internals._frame(packet) is first
    assert internals._frames([packet, packet]) == first + first


def test_a_ping_waits_its_timeout_by_the_monotonic_clock_wherever_the_wall_clock_goes(
        monkeypatch):
    internals.write_websockets_directly()
    server = engineio.Server(async_mode='threading', ping_timeout=5)
    connection = engineio.socket.Socket(server, 'eio-1')
    connection.last_ping = time.monotonic()
    monkeypatch.setattr(time, 'time', lambda: 86_400.0 * 365 * 100)  # a century on
    assert connection.check_ping_timeout() and not connection.closed
    connection.last_ping = time.monotonic() - 6
    monkeypatch.setattr(time, 'time', lambda: 0.0)  # back to 1970
    assert not connection.check_ping_timeout() and connection.closed


def test_python_engineio_reads_at_most_max_decode_packets_in_one_payload():
    limit = engineio.payload.Payload.max_decode_packets
    packet = engineio.packet.Packet(engineio.packet.MESSAGE, data='x')
    readable = engineio.payload.Payload(packets=[packet] * limit).encode()
    assert len(engineio.payload.Payload(encoded_payload=readable).packets) == limit
    too_many = engineio.payload.Payload(packets=[packet] * (limit + 1)).encode()
    with pytest.raises(ValueError, match='Too many packets'):
        engineio.payload.Payload(encoded_payload=too_many)
