"""The one module that reaches into python-socketio's, python-engineio's and gevent-websocket's
private parts.

Pinned by requirements.txt; ``tests/unit/test_internals.py`` fails if an upgrade changes any of
what is relied on here: closing a client's whole connection without waiting (python-socketio
only offers a blocking form), wrapping how the server takes in connections, messages and
events, asking whether a client is in a room without walking every room, putting the emits
that come through the Redis queue in order, reading WebSocket frames within a size limit and
unmasking them in C, writing WebSocket frames without a writer greenlet per connection and pinging
every connection from one greenlet (timing pongs on the monotonic clock), bounding what a
connection may leave unread, and counting emits, deliveries, slow consumers and queue publish
failures for the metrics.
"""
import collections
import functools
import logging
import socket
import struct
import time
import weakref

import engineio.exceptions
import engineio.packet
import engineio.payload
import engineio.socket
import gevent
import geventwebsocket.handler
import socketio
from geventwebsocket.exceptions import ProtocolError, WebSocketError
from geventwebsocket.websocket import Header, WebSocket
from wsaccel.xormask import XorMaskerSimple

from server.tasks import Trampoline

log = logging.getLogger(__name__)


def close_transport(server, eio_sid, lost=False):
    """Close a client's Engine.IO connection (every namespace) without waiting for its queue.

    ``eio.disconnect()`` waits for the client to drain its queue, which a long-polling client
    that never polls again, or a flooder that never reads, would make it do forever. Once the
    transport is closed the server reads nothing more from it.

    By default the client is sent Engine.IO's CLOSE packet, which Socket.IO clients take as
    the server's wish and do not reconnect after. With ``lost`` the connection just ends, as a
    network failure would: clients reconnect by themselves (a server that is restarting).
    """
    connection = server.eio.sockets.pop(eio_sid, None)
    if connection is not None:
        reason = server.eio.reason.TRANSPORT_CLOSE if lost else server.eio.reason.SERVER_DISCONNECT
        connection.close(wait=False, abort=lost, reason=reason)


def close_every_transport(server):
    """End every client's connection as a lost one (server shutdown): they reconnect."""
    for eio_sid in list(server.eio.sockets):
        close_transport(server, eio_sid, lost=True)


def wrap_inbound_messages(server, wrapper):
    """Route every Engine.IO message through ``wrapper(handle, eio_sid, data)``."""
    handle = server._handle_eio_message
    server.eio.on('message', lambda eio_sid, data: wrapper(handle, eio_sid, data))


def connection_address(server, eio_sid):
    """Return the client address of an Engine.IO connection, for the log (``-`` unknown).

    ``server`` is python-socketio's or engineio's server; create_app tells the latter how to
    find addresses (``relay_address_of``).
    """
    eio = getattr(server, 'eio', server)
    address_of = getattr(eio, 'relay_address_of', None)
    return address_of(eio_sid) if address_of is not None else '-'


def watch_connections(server, opened, closed):
    """Call ``opened(eio_sid, environ)`` as each Engine.IO connection is made, before
    python-socketio takes it, and ``closed(eio_sid)`` once python-socketio is done with its end.

    python-socketio's admin instrumentation wraps these two handlers the same way.
    """
    connect = server._handle_eio_connect
    disconnect = server._handle_eio_disconnect

    def on_connect(eio_sid, environ):
        opened(eio_sid, environ)
        return connect(eio_sid, environ)

    def on_disconnect(eio_sid, reason=None):
        try:
            return disconnect(eio_sid, reason)
        finally:
            closed(eio_sid)

    server.eio.on('connect', on_connect)
    server.eio.on('disconnect', on_disconnect)


def pending_attachments(server, eio_sid):
    """Return the attachments announced by the binary packet a client is in the middle of
    sending, and those received so far; None when it is sending none."""
    packet = server._binary_packet.get(eio_sid)
    return None if packet is None else (packet.attachment_count, packet.attachments)


def wrap_event_dispatch(server, wrapper):
    """Route every client event through ``wrapper(dispatch, server, sid, eio_sid, data,
    namespace, ack_id)``, where ``dispatch`` is python-socketio's own."""
    dispatch = server._handle_event_internal
    server._handle_event_internal = functools.partial(wrapper, dispatch)


def in_room(server, sid, namespace, room):
    """Return whether a client of this worker is in a Socket.IO room, in one lookup.

    python-socketio's public ``rooms(sid)`` walks every room of the namespace, which would
    put a loop over all rooms on every room message.
    """
    return sid in server.manager.rooms.get(namespace, {}).get(room, ())


def local_members(server, namespace, room):
    """Return the sids of this worker's clients in a Socket.IO room, as a set."""
    return frozenset(server.manager.rooms.get(namespace, {}).get(room, ()))


class IndexedRooms:
    """For a python-socketio manager: remember the rooms of each client.

    python-socketio finds a leaving client's rooms by walking every room of the namespace,
    each client's own room included: a disconnect costs O(clients), and 10,000 clients ended
    at once (a shutdown, a restart) took 20 s. Here a disconnect leaves just the client's rooms.
    """

    def _rooms_by_client(self):
        try:
            return self._room_index
        except AttributeError:
            self._room_index = {}  # (namespace, sid) -> {room: None}, in the order entered
            return self._room_index

    def basic_enter_room(self, sid, namespace, room, eio_sid=None):
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        self._rooms_by_client().setdefault((namespace, sid), {})[room] = None

    def basic_leave_room(self, sid, namespace, room):
        super().basic_leave_room(sid, namespace, room)
        index = self._rooms_by_client()
        rooms = index.get((namespace, sid))
        if rooms is not None:
            rooms.pop(room, None)
            if not rooms:
                del index[(namespace, sid)]

    def basic_disconnect(self, sid, namespace, **kwargs):
        """python-socketio's ``basic_disconnect``, without the walk over every room."""
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_by_client().get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            if sid in pending.get(namespace, ()):
                pending[namespace].remove(sid)
                if not pending[namespace]:
                    del pending[namespace]


def count_traffic(server, counts):
    """Count in ``counts`` (a ``server.metrics.Metrics``) what a python-socketio server emits
    and delivers, the messages its queue fails to publish, and the connections it closes as
    slow consumers. Its manager must be one of the managers below."""
    server.manager.counts = counts
    server.eio.relay_counts = counts


class CountedEmits:
    """For a python-socketio manager: count each emit made on this worker, by event, in
    ``counts`` (see ``count_traffic``; nothing is counted without)."""

    counts = None

    def emit(self, event, *args, **kwargs):
        """Count the emit, then make it as python-socketio does."""
        if self.counts is not None:
            self.counts.emitted(event)
        return super().emit(event, *args, **kwargs)


class CountedDeliveries(socketio.Manager):
    """For a python-socketio manager: count the packets emits hand to this worker's clients.

    It sits right above python-socketio's ``Manager.emit`` in the method order, which every
    delivery to this worker's clients goes through: its own emits, and with a message queue
    the other workers' too. The recipients are counted from the room's size, so a broadcast
    costs one count, not one per recipient.
    """

    counts = None

    def emit(self, event, data, namespace, room=None, skip_sid=None, callback=None, to=None,
             **kwargs):
        """Count the emit's recipients here, then deliver it as python-socketio does."""
        room = to or room
        if self.counts is not None:
            self.counts.delivered(event, self._recipients(namespace, room, skip_sid))
        return super().emit(event, data, namespace, room=room, skip_sid=skip_sid,
                            callback=callback, **kwargs)

    def _recipients(self, namespace, room, skip_sid):
        rooms = self.rooms.get(namespace, {})
        if isinstance(room, (list, tuple)):  # several rooms: someone in two counts twice
            return sum(len(rooms.get(each, ())) for each in room)
        members = rooms.get(room, ())  # room None: every client of the namespace
        skipped = skip_sid if isinstance(skip_sid, (list, tuple)) else (skip_sid,)
        return len(members) - sum(1 for sid in skipped if sid is not None and sid in members)


class IndexedManager(CountedEmits, IndexedRooms, CountedDeliveries):
    """python-socketio's in-process manager, with each client's rooms remembered."""


class OrderedRedisManager(CountedEmits, IndexedRooms, socketio.RedisManager, CountedDeliveries):
    """python-socketio's Redis manager, delivering numbered emits in their order.

    Every emit this worker is to deliver, its own (at once) and other workers' (from the
    queue), passes through ``_handle_emit``. Those for which ``numbered(message)`` returns a
    ``(key, number)`` go through ``sequencer`` (a ``server.sequencer.Sequencer``), one at a
    time, and are delivered in the order it hands them on; the rest are delivered as they come.
    A message python-socketio gave up publishing to Redis is counted (``count_traffic``).
    """

    def __init__(self, url, *, numbered, sequencer, **kwargs):
        super().__init__(url, **kwargs)
        self._numbered = numbered
        self._sequencer = sequencer
        self._in_turn = Trampoline()
        self._release_scheduled = False

    def emit(self, event, data, namespace=None, room=None, skip_sid=None, callback=None,
             to=None, **kwargs):
        """Send an emit addressed to one client of this worker straight to it.

        python-socketio publishes every emit, a reply to the client being served included,
        for every worker to decode and drop; ``ignore_queue`` is its own way to skip that.
        """
        room = to or room
        if isinstance(room, str) and self.is_connected(room, namespace or '/'):
            kwargs['ignore_queue'] = True
        return super().emit(event, data, namespace=namespace, room=room, skip_sid=skip_sid,
                            callback=callback, **kwargs)

    def _publish(self, data):
        # python-socketio logs a publish it gave up on, after one retry, and returns None.
        published = super()._publish(data)
        if published is None and self.counts is not None:
            self.counts.publish_failed()
        return published

    def _handle_emit(self, message):
        found = self._numbered(message)
        if found is None:
            super()._handle_emit(message)
        else:
            self._in_turn.post(functools.partial(self._sequenced, *found, message))

    def _sequenced(self, key, number, message):
        self._deliver(self._sequencer.offer(key, number, message))
        if self._sequencer.holding and not self._release_scheduled:
            self._release_scheduled = True
            self.server.start_background_task(self._release_when_due)

    def _release_when_due(self):
        while (wait := self._sequencer.next_due_in()) is not None:
            self.server.sleep(wait)
            self._in_turn.post(lambda: self._deliver(self._sequencer.due()))
        self._release_scheduled = False

    def _deliver(self, messages):
        for message in messages:
            super()._handle_emit(message)


def unmask_frames_in_c():
    """Make gevent-websocket unmask client frames with wsaccel's C instead of a Python loop.

    Every frame a client sends is masked; gevent-websocket XORs it byte by byte in Python, which
    costs microseconds per frame and seconds per large one. (It already validates UTF-8 with
    wsaccel when that is installed.)
    """
    Header.mask_payload = Header.unmask_payload = _xor_with_mask


def _xor_with_mask(header, payload):
    return XorMaskerSimple(header.mask).process(payload)


class LimitedWebSocket(WebSocket):
    """gevent-websocket's WebSocket, refusing a message over ``limit`` bytes from its header.

    gevent-websocket reads whatever length a frame header announces, and engineio checks the
    size only once the whole message is in: a client announcing 40 MB made the server read and
    unmask 40 MB first. Here a frame, or a fragmented message, over the limit ends the
    connection with close code 1009 before its payload is read.
    """

    __slots__ = ('message_bytes',)
    limit = None
    CLOSE_TOO_BIG = struct.pack('!H', 1009) + b'message too big'

    def read_frame(self):
        """Read one frame, as gevent-websocket does, unless it takes the message over the limit."""
        header = Header.decode_header(self.stream)
        counted = getattr(self, 'message_bytes', 0)
        if header.opcode in (self.OPCODE_TEXT, self.OPCODE_BINARY):
            counted = header.length
        elif header.opcode == self.OPCODE_CONTINUATION:
            counted += header.length
        self.message_bytes = counted
        if self.limit is not None and max(header.length, counted) > self.limit:
            self.send_frame(self.CLOSE_TOO_BIG, self.OPCODE_CLOSE)
            # gevent-websocket's receive() takes a socket error as the connection's end.
            raise socket.error(f'a WebSocket message of over {self.limit} bytes')
        if header.flags:
            raise ProtocolError
        if not header.length:
            return header, b''
        try:
            payload = self.raw_read(header.length)
        except OSError:
            payload = b''
        if len(payload) != header.length:
            raise WebSocketError('Unexpected EOF reading frame payload')
        if header.mask:
            payload = header.unmask_payload(payload)
        return header, payload


def limit_websocket_messages(limit):
    """Make gevent-websocket's handler read every connection with ``LimitedWebSocket``."""
    LimitedWebSocket.limit = limit
    geventwebsocket.handler.WebSocket = LimitedWebSocket


_ENGINEIO_POLL = engineio.socket.Socket.poll
_ENGINEIO_CLOSE = engineio.socket.Socket.close
_ENGINEIO_SCHEDULE_PING = engineio.socket.Socket.schedule_ping
_ENGINEIO_CHECK_PING_TIMEOUT = engineio.socket.Socket.check_ping_timeout
_ENGINEIO_WEBSOCKET_HANDLER = engineio.socket.Socket._websocket_handler


def write_websockets_directly():
    """Write each WebSocket packet from the greenlet that sends it, and ping every connection
    from one greenlet.

    engineio gives every WebSocket connection a writer greenlet that waits on its queue, and
    every connection a greenlet that sleeps until its next ping: two greenlets of the three a
    connection costs (about 9 KiB each, idle), and for each packet delivered a queue hand-off
    and a switch to the writer. Here a packet is framed (once for all of a room's members)
    and written to the socket without waiting, with whatever else the connection is sent in
    the same turn of the event loop (``Outbox``): only when the socket is backed up (a slow
    reader) does what is left go to the queue, drained by a writer greenlet that lives until
    the queue is empty. Pings are sent by one greenlet for the whole server (``Pinger``).

    Each ping's wait for its pong is timed on the monotonic clock. engineio stamps a ping with
    ``time.time()`` and closes a client whose pong has not come ``ping_timeout`` later by that
    clock, at every packet it sends it and in its monitor: a wall clock set a day forward (an
    administrator, NTP stepping, a resumed VM) closed every client whose pong was on its way,
    and one set an hour back kept a client gone for that hour.
    """
    engineio.socket.Socket.poll = _poll
    engineio.socket.Socket.close = _close_and_flush
    engineio.socket.Socket.schedule_ping = _schedule_ping
    engineio.socket.Socket.check_ping_timeout = _check_ping_timeout
    engineio.socket.Socket._websocket_handler = _websocket_handler


def _poll(socket_):
    """Long-polling: engineio's poll, with at most ``Payload.max_decode_packets`` packets a
    response, counting what it takes off the unsent output.

    engineio's takes all that is queued, but python-engineio's client refuses a payload of
    more than that many packets ("Too many packets in payload") and drops its connection: a
    busy room did that to a Python client on long-polling. The rest waits for the next poll.
    """
    server = socket_.server
    try:
        packets = [socket_.queue.get(timeout=server.ping_interval + server.ping_timeout)]
        socket_.queue.task_done()
    except server.get_queue_empty_exception():
        raise engineio.exceptions.QueueEmpty() from None
    if packets == [None]:
        return []
    packets += _take_waiting(socket_, engineio.payload.Payload.max_decode_packets - 1)
    if packets[-1] is None:  # the end marker is for the poll after this one
        packets.pop()
        socket_.queue.put(None)
    _count_sent(socket_, packets)
    return packets


def _close_and_flush(socket_, wait=True, abort=False, reason=None):
    _ENGINEIO_CLOSE(socket_, wait=wait, abort=abort, reason=reason)
    outbox = getattr(socket_, 'relay_outbox', None)
    if outbox is not None:
        if abort or reason == socket_.server.reason.PING_TIMEOUT:
            outbox.shut_down()  # its client is gone (or to be dropped): nothing more to write
        outbox.flush()  # close() queued its end marker (and maybe a CLOSE packet)


def _websocket_handler(socket_, ws):
    """engineio's ``Socket._websocket_handler`` (python-engineio 4.15.1, MIT licence), with the
    writer greenlet replaced by an ``Outbox``."""
    def websocket_wait():
        data = ws.wait()
        if data and len(data) > socket_.server.max_http_buffer_size:
            raise ValueError('packet is too large')
        return data

    if socket_.connected:
        # the socket was already connected (long-polling), so this is an upgrade
        socket_.upgrading = True  # hold packet sends during the upgrade
        pkt = websocket_wait()
        decoded_pkt = engineio.packet.Packet(encoded_packet=pkt)
        if decoded_pkt.packet_type != engineio.packet.PING or decoded_pkt.data != 'probe':
            socket_.upgrading = False
            return []
        ws.send(engineio.packet.Packet(engineio.packet.PONG, data='probe').encode())
        socket_.queue.put(engineio.packet.Packet(engineio.packet.NOOP))  # end poll
        pkt = websocket_wait()
        decoded_pkt = engineio.packet.Packet(encoded_packet=pkt)
        if decoded_pkt.packet_type != engineio.packet.UPGRADE:
            socket_.upgraded = False
            socket_.upgrading = False
            return []
        socket_.upgraded = True
        socket_.upgrading = False
    else:
        socket_.connected = True
        socket_.upgraded = True

    outbox = socket_.relay_outbox = Outbox(socket_, ws)
    outbox.flush()  # what was queued before: the handshake's OPEN, or what the upgrade held
    while True:
        try:
            data = websocket_wait()
        except Exception:
            break
        if data is None:  # connection closed by the client
            break
        try:
            socket_.receive(engineio.packet.Packet(encoded_packet=data))
        except (engineio.exceptions.UnknownPacketError, engineio.exceptions.SocketIsClosedError):
            if socket_.closed:
                break
        except Exception:
            log.exception('unexpected error taking a packet from %s',
                          connection_address(socket_.server, socket_.sid))
            break
    outbox.finish()
    socket_.close(wait=False, abort=True, reason=socket_.server.reason.TRANSPORT_CLOSE)
    return []


class Outbox:
    """What one WebSocket connection sends: frames written straight to its socket, together
    when several are sent in one turn of the event loop, and a writer greenlet only while the
    connection is backed up.

    The first frame sent to an idle connection schedules a write for the loop's next round of
    callbacks, and every frame sent to it until then joins that write: a room's members get
    the messages of one turn (and a sender its ack) in one system call instead of one each.
    What the socket takes without waiting is done; the rest, and anything sent meanwhile
    (queued), a writer greenlet writes out in order, waiting as long as the peer needs, then
    ends. The queue's end marker (``None``, put by ``close``) closes the WebSocket. Each
    packet's bytes leave the connection's unsent count once written.
    """

    # Bytes that may wait for the loop's next round before they are written anyway: a client
    # whose events arrive faster than its reader yields still gets its replies as they come.
    MAX_WAITING_BYTES = 64 * 1024

    def __init__(self, socket_, ws):
        self.socket = socket_
        self.ws = ws
        self.websocket = ws._sock  # gevent-websocket's WebSocket
        self.connection = self.websocket.stream.handler.socket
        self.loop = gevent.get_hub().loop
        self.waiting = []  # packets for the next round's write, in order
        self.waiting_bytes = 0
        self.unwritten = None  # what a write left, to go before anything queued
        self.writer = None
        self.finished = False

    def send(self, packet):
        """Send a packet: with the others of this turn of the loop, or after what is queued."""
        if self.writer is None and not self.finished and self.socket.queue.empty() \
                and not self.websocket.closed:
            if not self.waiting:
                self.loop.run_callback(self._write_waiting)
            self.waiting.append(packet)
            self.waiting_bytes += _packet_size(packet)
            if self.waiting_bytes > self.MAX_WAITING_BYTES:
                self._write_waiting()
        else:
            self.socket.queue.put(packet)
            self.flush()

    def _write_waiting(self):
        """Write what waits for this round, without waiting; leave the rest to a writer."""
        if self.writer is not None or not self.waiting:
            return  # written already, or the writer writes it first
        packets = self._take_waiting_packets()
        if self.finished or self.websocket.closed:
            return
        try:
            data = _frames(packets)
            written = self.connection.send(data, 0, 0.0)  # never waits
        except BlockingIOError:
            written = 0
        except OSError:
            return  # the connection is gone; its reader will notice and end it
        except Exception:  # run by the event loop itself: nothing above would hear of it
            log.exception('could not write to %s', connection_address(self.socket.server,
                                                                     self.socket.sid))
            self.shut_down()
            return
        if written == len(data):
            _count_sent(self.socket, packets)
        else:
            self.unwritten = (data[written:], packets)
        self.flush()

    def _take_waiting_packets(self):
        packets, self.waiting, self.waiting_bytes = self.waiting, [], 0
        return packets

    def flush(self):
        """Have whatever is left or queued written out, by a writer greenlet."""
        if self.writer is None and not self.finished and (
                self.unwritten is not None or self.waiting or not self.socket.queue.empty()):
            self.writer = self.socket.server.start_background_task(self._write_queue)

    def finish(self):
        """The connection has ended: end any write still waiting, close the WebSocket."""
        self.shut_down()
        writer = self.writer
        if writer is not None:
            self.socket.queue.put(None)
            writer.join()
        self._close_websocket()

    def _write_queue(self):
        try:
            while self._write_unwritten_and_waiting():
                items = _take_queued(self.socket)
                if not items:
                    return
                for item in items:
                    if item is None:
                        self.finished = True
                        self._close_websocket()
                        return
                    self.connection.sendall(_frame(item))
        except Exception:
            self.finished = True
            self._close_websocket()
        finally:
            self.writer = None

    def _write_unwritten_and_waiting(self):
        """Write, waiting as needed, what a write left and what waited for the loop (both
        older than anything queued); return False if the connection has ended."""
        if self.unwritten is not None:
            (data, packets), self.unwritten = self.unwritten, None
            self.connection.sendall(data)
            _count_sent(self.socket, packets)
        if self.waiting:
            packets = self._take_waiting_packets()
            self.connection.sendall(_frames(packets))
            _count_sent(self.socket, packets)
        return not self.finished

    def shut_down(self):
        """End the connection at once, both ways: a read or a write still waiting on it
        returns. (Its sockets wait without a timeout once upgraded: see run.py.)"""
        self.finished = True
        self.unwritten = None
        self._take_waiting_packets()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already shut, or gone

    def _close_websocket(self):
        # The close frame goes out before the FIN; a peer that never answers it cannot
        # keep the reader waiting.
        if not self.websocket.closed:
            self.ws.close()
        self.shut_down()


def _frame(packet):
    """Return an Engine.IO packet as one WebSocket frame (text, or binary for bytes).

    A room's emit sends one packet object to every member: it is framed once, for all.
    """
    frame = getattr(packet, 'relay_frame', None)
    if frame is None:
        payload = packet.encode()
        if isinstance(payload, str):
            payload, opcode = payload.encode(), WebSocket.OPCODE_TEXT
        else:
            opcode = WebSocket.OPCODE_BINARY
        frame = packet.relay_frame = (
            Header.encode_header(True, opcode, b'', len(payload), 0) + payload)
    return frame


def _frames(packets):
    return _frame(packets[0]) if len(packets) == 1 else b''.join(map(_frame, packets))


def _take_queued(socket_):
    """Take everything queued now, without waiting, up to and including an end marker."""
    packets = _take_waiting(socket_)
    _count_sent(socket_, packets)
    return packets


def _take_waiting(socket_, limit=None):
    """Take what is queued now (at most ``limit``), without waiting, up to and including an
    end marker (``None``)."""
    packets = []
    queue_empty = socket_.server.get_queue_empty_exception()
    while limit is None or len(packets) < limit:
        try:
            packet = socket_.queue.get(block=False)
        except queue_empty:
            break
        socket_.queue.task_done()
        packets.append(packet)
        if packet is None:
            break
    return packets


def _schedule_ping(socket_):
    # As engineio's: only when the last ping was answered (or at the start).
    if socket_.last_ping:
        socket_.last_ping = None
        pinger = getattr(socket_.server, 'relay_pinger', None)
        if pinger is None:
            pinger = socket_.server.relay_pinger = Pinger(socket_.server)
        pinger.schedule(socket_)


class Pinger:
    """Sends every connection its pings from one greenlet.

    engineio starts a greenlet per connection that sleeps ``ping_interval`` and then pings.
    The interval is the same for all, so connections fall due in the order they were
    scheduled: a queue, served by one greenlet that sleeps until the first is due.
    """

    def __init__(self, server):
        self.server = server
        self.due = collections.deque()  # (when, weak reference to the socket)
        self.task = None

    def schedule(self, socket_):
        """Ping ``socket_`` once ``ping_interval`` has passed."""
        self.due.append((time.monotonic() + self.server.ping_interval, weakref.ref(socket_)))
        if self.task is None:
            self.task = self.server.start_background_task(self._run)

    def _run(self):
        try:
            while self.due:
                wait = self.due[0][0] - time.monotonic()
                if wait > 0:
                    self.server.sleep(wait)
                    continue
                _, ref = self.due.popleft()
                socket_ = ref()
                if socket_ is not None and not socket_.closing and not socket_.closed:
                    socket_.last_ping = time.monotonic()  # read by _check_ping_timeout
                    try:
                        socket_.send(engineio.packet.Packet(engineio.packet.PING))
                    except Exception:
                        log.debug('could not ping %s', connection_address(
                            socket_.server, socket_.sid), exc_info=True)
        finally:
            self.task = None


def _check_ping_timeout(socket_):
    """engineio's check that a pinged client answered in time, on the monotonic clock. (The
    stamp engineio gives a new socket is only a flag, cleared as its connection opens.)"""
    if socket_.closed:
        raise engineio.exceptions.SocketIsClosedError()
    pinged = socket_.last_ping
    if pinged and time.monotonic() - pinged > socket_.server.ping_timeout:
        socket_.server.logger.info('%s: Client is gone, closing socket', socket_.sid)
        # As engineio does: a CLOSE packet puts a half-open socket in its right state.
        socket_.close(wait=False, abort=False, reason=socket_.server.reason.PING_TIMEOUT)
        return False
    return True


_ENGINEIO_SEND = engineio.socket.Socket.send


class UnsentBound:
    """How much a connection may leave unread: bytes and packets queued for it."""

    max_bytes = None
    max_packets = None


def bound_unsent_output(max_bytes, max_packets):
    """Close a connection whose queued, unsent output would go over either bound.

    engineio queues without limit for a client that does not read (a WebSocket whose peer
    stopped reading, a long-polling client that stopped polling): five such clients asking
    for history pages held 470 MB. Past the bound the connection is closed as lost (its
    client may come back and resume) and what it left unread is dropped at once.
    """
    UnsentBound.max_bytes, UnsentBound.max_packets = max_bytes, max_packets
    engineio.socket.Socket.send = _send_within_bound


def _packet_size(packet):
    data = packet.data
    return len(data) if isinstance(data, (str, bytes)) else 16


def _send_within_bound(socket_, packet):
    unsent = getattr(socket_, 'unsent_bytes', 0) + _packet_size(packet)
    if (unsent > UnsentBound.max_bytes
            or socket_.queue.qsize() >= UnsentBound.max_packets):
        _drop_slow_consumer(socket_)
        return
    outbox = getattr(socket_, 'relay_outbox', None)
    if outbox is None:
        socket_.unsent_bytes = unsent
        _ENGINEIO_SEND(socket_, packet)
    elif socket_.check_ping_timeout():  # as engineio's send: False once a client is gone
        socket_.unsent_bytes = unsent
        outbox.send(packet)


def _count_sent(socket_, packets):
    taken = sum(_packet_size(packet) for packet in packets if packet is not None)
    socket_.unsent_bytes = max(0, getattr(socket_, 'unsent_bytes', 0) - taken)


def _drop_slow_consumer(socket_):
    if socket_.closed or socket_.closing:
        return
    log.warning('closing a connection from %s: it left %d bytes in %d packets unread',
                connection_address(socket_.server, socket_.sid),
                getattr(socket_, 'unsent_bytes', 0), socket_.queue.qsize())
    socket_.server.sockets.pop(socket_.sid, None)
    socket_.close(wait=False, abort=True, reason=socket_.server.reason.TRANSPORT_ERROR)
    counts = getattr(socket_.server, 'relay_counts', None)
    if counts is not None:
        counts.slow_consumer_closed()
    while _take_waiting(socket_):
        pass
    socket_.unsent_bytes = 0
    socket_.queue.put(None)  # what ends its writer, or its next long-poll
