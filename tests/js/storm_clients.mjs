// Many socket.io-client chat clients in one Node process, each behaving as the README tells a
// client to: it reconnects by itself, presents its session token, joins its room again from its
// cursor and pages on while the server says there is more. Driven by
// tests/live/test_abuse_suite.py: one JSON line on stdout per join ({"event": "joined"}), and,
// for each "report" line on stdin, every client's state ({"event": "report"}). It ends when its
// stdin closes. Usage: node storm_clients.mjs SERVER_URL COUNT ROOMS: client i is in room
// storm-(i mod ROOMS).
import { createInterface } from 'node:readline';
import { report, sessionSocket } from './session_socket.mjs';

const [serverUrl, count, rooms] = process.argv.slice(2);
const ACK_TIMEOUT_MS = 10000;

// One client: its session, and the ids of the room's messages it holds. The cursor is the
// highest id up to which it holds every message.
const startClient = (index) => {
  const room = `storm-${index % Number(rooms)}`;
  const state = {
    room, nick: `storm-${index}`, session: null, cursor: 0, ids: new Set(), connects: 0,
  };
  const note = (id) => {
    state.ids.add(id);
    while (state.ids.has(state.cursor + 1)) state.cursor += 1;
  };
  const socket = sessionSocket(serverUrl, 'websocket', state);

  socket.on('connect', async () => {
    state.connects += 1;
    try {
      let page = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('join', {
        room, since_id: state.cursor,
      });
      const members = page.members?.length;
      for (;;) {
        if (!page.ok) throw new Error(JSON.stringify(page.error));
        for (const message of page.history ?? page.messages ?? []) note(message.id);
        if (!page.more) break;
        page = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('history', {
          room, since_id: state.cursor,
        });
      }
      report('joined', { client: index, connects: state.connects, members });
    } catch (error) {
      report('failed', { client: index, connects: state.connects, error: String(error) });
    }
  });

  socket.on('chat_message', (message) => note(message.id));

  return { socket, state };
};

const clients = Array.from({ length: Number(count) }, (_, index) => startClient(index));

createInterface({ input: process.stdin })
  .on('line', () => {
    report('report', {
      clients: clients.map(({ socket, state }) => ({
        room: state.room,
        connected: socket.connected,
        connects: state.connects,
        cursor: state.cursor,
        held: state.ids.size,
      })),
    });
  })
  .on('close', () => {
    for (const { socket } of clients) socket.disconnect();
    process.exit(0);
  });
