"""How the server takes in client events and answers every one of them.

python-socketio drops a handler's return value when the client asked for no acknowledgement,
and tells the handler nothing either way. ``guard_client_events`` wraps the server's dispatch:
it records, per event, whether an acknowledgement was asked for (so that ``replies`` can send a
refusal as an ``error`` event to a client that would otherwise never hear of it), drops events
that fake lifecycle names, and keeps one busy client from starving the rest.
``AnsweringNamespace`` refuses unknown events instead of ignoring them, and runs each event's
handler without Flask's request context (see its docstring).
"""
import contextvars
import functools
import logging

import gevent
import greenlet
from flask_socketio import Namespace

from server.chat.limits import Verdict
from server.errors import ClientError
from server.metrics import NOT_COUNTED
from server.namespaces.access import refuse_connect
from server.namespaces.internals import (close_transport, connection_address,
                                         pending_attachments, wrap_event_dispatch,
                                         wrap_inbound_messages)

log = logging.getLogger(__name__)

_ack_requested = contextvars.ContextVar('ack_requested', default=False)
_current_sid = contextvars.ContextVar('current_sid')

# python-socketio dispatches a client's event named like a lifecycle event to the lifecycle
# handler, so a client could fake its own connect or disconnect; such events are dropped.
LIFECYCLE_EVENTS = frozenset({'connect', 'disconnect'})
RESERVED_EVENTS = LIFECYCLE_EVENTS | {'connect_error'}


# Undecodable packets one connection may send before it is closed; each also counts against
# its rate limit, and only its first is logged.
GARBAGE_LIMIT = 5
GARBAGE_SENDERS_REMEMBERED = 10_000
# Binary attachments one Socket.IO packet may announce. No event of ours takes binary data;
# python-socketio holds a packet's attachments until the last arrives, so both their number
# and their bytes (at most the largest packet's, together) are capped.
MAX_ATTACHMENTS = 10
BINARY_PACKET_TYPES = ('5', '6')  # BINARY_EVENT, BINARY_ACK


def guard_client_events(server, limiter=None, max_attachment_bytes=None, garbage_closed=None):
    """Wrap the server's handling of what clients send.

    A connection whose socket buffer never runs dry (a flooder) would keep its reader greenlet
    busy, starving every other client and even the writer that would close it; so a message
    read without waiting first yields to the other greenlets. Client events named
    like lifecycle events are dropped, and each event records whether it asked for an ack.
    A packet that cannot be decoded is logged once per connection, without a traceback, and
    counts against the ``limiter``; a connection that keeps sending them is closed (and
    ``garbage_closed()`` called, if given). So is one whose binary packet announces more than
    MAX_ATTACHMENTS attachments, or whose attachments add up to more than
    ``max_attachment_bytes``.
    """
    loop_turn = _loop_turn(server)
    garbage = {}  # eio_sid -> undecodable packets it sent

    def handle(take, eio_sid, data):
        if not within_binary_caps(eio_sid, data):
            log.warning('closing connection %s from %s: its binary attachments went over the cap',
                        eio_sid, connection_address(server, eio_sid))
            close_transport(server, eio_sid)
            if garbage_closed is not None:
                garbage_closed()
            return None
        try:
            return take(eio_sid, data)
        except ValueError as error:  # python-socketio could not decode the packet
            refuse_garbage(eio_sid, error)
            return None

    def within_binary_caps(eio_sid, data):
        pending = pending_attachments(server, eio_sid)
        if pending is not None:
            received = sum(len(attachment) for attachment in pending[1]) + len(data)
            return max_attachment_bytes is None or received <= max_attachment_bytes
        if isinstance(data, str) and data[:1] in BINARY_PACKET_TYPES:
            announced = _announced_attachments(data)
            return announced is not None and 1 <= announced <= MAX_ATTACHMENTS
        return True

    def refuse_garbage(eio_sid, error):
        if len(garbage) >= GARBAGE_SENDERS_REMEMBERED:
            garbage.clear()
        count = garbage[eio_sid] = garbage.get(eio_sid, 0) + 1
        if count == 1:
            log.info('undecodable packet from connection %s from %s (%s); any more are not '
                     'logged', eio_sid, connection_address(server, eio_sid), error)
        flooding = limiter is not None and limiter.check(eio_sid) is Verdict.DISCONNECT
        if count >= GARBAGE_LIMIT or flooding:
            log.warning('closing connection %s from %s: it kept sending undecodable packets',
                        eio_sid, connection_address(server, eio_sid))
            del garbage[eio_sid]
            close_transport(server, eio_sid)
            if garbage_closed is not None:
                garbage_closed()

    def handle_message_fairly(take, eio_sid, data):
        if loop_turn is None:
            try:
                return handle(take, eio_sid, data)
            finally:
                server.sleep(0)
        # Under gevent, yield only when the reader got this message without waiting since it
        # handled its last one (the event loop has not turned meanwhile): a client whose
        # messages come one at a time, as most do, has let the others run while it waited.
        reader = greenlet.getcurrent()
        if getattr(reader, 'relay_turn', None) == loop_turn():
            server.sleep(0)
        try:
            return handle(take, eio_sid, data)
        finally:
            reader.relay_turn = loop_turn()

    def guarded_dispatch(dispatch, srv, sid, eio_sid, data, namespace, ack_id):
        if not data or not isinstance(data[0], str) or data[0] in RESERVED_EVENTS:
            log.debug('dropped a client event with a reserved or malformed name from %s', sid)
            return None
        token = _ack_requested.set(ack_id is not None)
        try:
            return dispatch(srv, sid, eio_sid, data, namespace, ack_id)
        finally:
            _ack_requested.reset(token)

    wrap_inbound_messages(server, handle_message_fairly)
    wrap_event_dispatch(server, guarded_dispatch)


def _announced_attachments(packet):
    """Return how many attachments a binary packet's header announces (``51-...``), or None
    when it announces no readable number."""
    count, dash, _ = packet[1:].partition('-')
    if not dash or not count.isdigit() or len(count) > 6:
        return None
    return int(count)


def _loop_turn(server):
    """Return a function giving the time of the gevent loop's current turn; None off gevent."""
    if server.async_mode != 'gevent':
        return None
    return gevent.get_hub().loop.now


def replies(handler):
    """Decorate an ``on_<event>(self, payload)`` method so that it always answers.

    The handler returns a dict of reply fields (or None) and raises ClientError to refuse.
    Success acks ``{"ok": true, ...fields}``. A refusal acks ``{"ok": false, "error": ...}``,
    or, when no ack was asked for, emits the same object as ``error`` to the sender alone.
    """
    event = handler.__name__.removeprefix('on_')

    @functools.wraps(handler)
    def answer(namespace, *args):
        try:
            if len(args) > 1:
                raise ClientError('bad_request', f'"{event}" takes one payload argument')
            fields = handler(namespace, args[0] if args else None)
        except ClientError as error:
            return refusal(event, error, namespace.send_error, namespace.counts)
        except Exception:
            log.exception('handler for "%s" failed', event)
            failure = ClientError('internal_error', 'the server failed; try again')
            return refusal(event, failure, namespace.send_error, namespace.counts)
        return {'ok': True, **(fields or {})}

    return answer


class AnsweringNamespace(Namespace):
    """A namespace that refuses, rather than ignores, an event it has no handler for, and
    rate-limits every event, known or not, with ``limiter`` (shared by the namespaces, so one
    connection has one allowance).

    Flask-SocketIO builds a Flask request context around every event (a ``Request`` from the
    handshake's environ, URL matching, the cookie session), which was a fifth of the server's
    time per event, and half of each disconnect's (a shutdown disconnects everyone at once).
    Connects still get one, for the handshake's cookies; every other event's handler, the
    disconnect's included, is called directly. Handlers therefore take the client from ``self.sid``, never from
    ``flask.request``, and send with the namespace's own methods (``self.emit(..., room=sid)``,
    ``self.enter_room``), never with ``flask_socketio.emit`` or ``join_room``.
    """

    def __init__(self, namespace, limiter=None):
        super().__init__(namespace)
        self.limiter = limiter
        self.counts = NOT_COUNTED

    def count_into(self, metrics):
        """Count this namespace's events, refusals and disconnects in ``metrics``."""
        events = [name.removeprefix('on_') for name in dir(self) if name.startswith('on_')]
        self.counts = metrics.namespace_counts(
            self.namespace, [event for event in events if event not in LIFECYCLE_EVENTS])

    @property
    def sid(self):
        """Return the sid of the client whose event or connect is being handled."""
        return _current_sid.get()

    def trigger_event(self, event, *args):
        """Dispatch to ``on_<event>``, or refuse the event as unknown."""
        token = _current_sid.set(args[0])
        try:
            if event == 'disconnect':
                self.counts.disconnected(args[1] if len(args) > 1 else None)
                handler = getattr(self, 'on_disconnect', None)
                return handler(*args[1:]) if handler is not None else None
            if event in LIFECYCLE_EVENTS:
                return super().trigger_event(event, *args)
            self.counts.event_in(event)
            verdict = self._verdict(args[0])
            if verdict is Verdict.DISCONNECT:
                return self._drop_flooder(args[0])
            if verdict is Verdict.REFUSE:
                self.counts.rate_limited()
                return self.refuse(event, args[0], 'rate_limited', 'too many events; slow down')
            handler = getattr(self, f'on_{event}', None)
            if handler is None:
                return self.refuse(event, args[0], 'unknown_event',
                                   f'{self.namespace} has no event "{event}"')
            return handler(*args[1:])
        finally:
            _current_sid.reset(token)

    def count_connect(self):
        """Count a connect against the connection's allowance; refuse it when over."""
        if self._verdict(self.sid) is not Verdict.ALLOW:
            self.counts.rate_limited()
            raise refuse_connect(self, ClientError('rate_limited', 'too many connects; slow down'))

    def connection_of(self, sid):
        """Return the Engine.IO connection of a client of this namespace.

        Allowances belong to the connection, not to the namespace sid, so that leaving and
        rejoining a namespace, or using both, does not buy a fresh burst.
        """
        return self.server.manager.eio_sid_from_sid(sid, self.namespace)

    def _verdict(self, sid):
        if self.limiter is None:
            return Verdict.ALLOW
        return self.limiter.check(self.connection_of(sid))

    def _drop_flooder(self, sid):
        # The namespace disconnect tells the client it was put out ("io server disconnect",
        # which socket.io clients do not retry by themselves); closing the transport as well
        # stops the server from reading, and so paying for, whatever it still sends.
        eio_sid = self.connection_of(sid)
        log.warning('disconnecting %s: it kept flooding %s', self.describe_client(sid, eio_sid),
                    self.namespace)
        self.counts.flood_disconnect()
        self.server.disconnect(sid, namespace=self.namespace)
        close_transport(self.server, eio_sid)

    def describe_client(self, sid, eio_sid):
        """Name a client in the log: its sid and address (a namespace may add more)."""
        return f'{sid} from {connection_address(self.server, eio_sid)}'

    def reply(self, event, data):
        """Send ``event`` to the client being served alone."""
        self.emit(event, data, room=self.sid)

    def send_error(self, reply):
        """Send a refusal as an ``error`` event to the client being served."""
        self.reply('error', reply)

    def refuse(self, event, sid, code, message):
        """Refuse an event outside any handler: in the ack, or as an ``error`` event."""
        return refusal(event, ClientError(code, message), lambda reply: self.socketio.emit(
            'error', reply, to=sid, namespace=self.namespace), self.counts)


def refusal(event, error, send_error, counts=NOT_COUNTED):
    """Return the refusal of ``event`` as the ack; if no ack was asked, ``send_error`` it too.
    It is counted in ``counts`` by its code."""
    counts.refused(error.code)
    reply = {**error.to_reply(), 'event': event}
    if not _ack_requested.get():
        send_error(reply)
    return reply
