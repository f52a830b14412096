// A socket.io-client chat client, as the README tells any client to behave: it reconnects by
// itself, presents its session token, joins its room again from its cursor and reports, one JSON
// line per event on stdout, what it sees. Driven by tests/js/test_js_restart.py; it ends when
// its stdin closes. Usage: node restart_client.mjs SERVER_URL TRANSPORT NICK ROOM
import { report, sessionSocket } from './session_socket.mjs';

const [serverUrl, transport, wantedNick, room] = process.argv.slice(2);
const state = { nick: wantedNick, session: null, cursor: 0, connects: 0 };

const socket = sessionSocket(serverUrl, transport, state);

socket.on('connect', async () => {
  state.connects += 1;
  const reply = await socket.timeout(5000).emitWithAck('join', { room, since_id: state.cursor });
  for (const message of reply.history ?? []) state.cursor = Math.max(state.cursor, message.id);
  report('joined', { connects: state.connects, nick: state.nick, members: reply.members });
});

socket.on('chat_message', (message) => {
  if (message.id === state.cursor + 1) state.cursor = message.id;
  report('message', { id: message.id, text: message.text });
});

socket.on('disconnect', (reason) => report('disconnect', { reason }));

process.stdin.resume();
process.stdin.on('end', () => {
  socket.disconnect();
  process.exit(0);
});
