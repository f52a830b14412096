"""The one module that reaches into python-socketio's and python-engineio's private parts.

Pinned by requirements.txt; ``tests/unit/test_internals.py`` fails if an upgrade changes any of
what is relied on here: closing a client's whole connection without waiting (python-socketio
only offers a blocking form), wrapping how the server takes in messages and events, and
asking whether a client is in a room without walking every room.
"""
import functools


def close_transport(server, eio_sid, lost=False):
    """Close a client's Engine.IO connection (every namespace) without waiting for its queue.

    ``eio.disconnect()`` waits for the client to drain its queue, which a long-polling client
    that never polls again, or a flooder that never reads, would make it do forever. Once the
    transport is closed the server reads nothing more from it.

    By default the client is sent Engine.IO's CLOSE packet, which Socket.IO clients take as
    the server's wish and do not reconnect after. With ``lost`` the connection just ends, as a
    network failure would: clients reconnect by themselves (a server that is restarting).
    """
    socket = server.eio.sockets.pop(eio_sid, None)
    if socket is not None:
        reason = server.eio.reason.TRANSPORT_CLOSE if lost else server.eio.reason.SERVER_DISCONNECT
        socket.close(wait=False, abort=lost, reason=reason)


def close_every_transport(server):
    """End every client's connection as a lost one (server shutdown): they reconnect."""
    for eio_sid in list(server.eio.sockets):
        close_transport(server, eio_sid, lost=True)


def wrap_inbound_messages(server, wrapper):
    """Route every Engine.IO message through ``wrapper(handle, eio_sid, data)``."""
    handle = server._handle_eio_message
    server.eio.on('message', lambda eio_sid, data: wrapper(handle, eio_sid, data))


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
