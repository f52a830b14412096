// What the Node test clients share: socket.io-client from the page's own npm install, a JSON
// line per report on stdout, and a /chat socket that behaves as the README tells a client to
// (it reconnects by itself and presents its session token, keeping the nick the server gave).
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../client/package.json', import.meta.url));
const { io } = require('socket.io-client');

/** Write one report as a JSON line on stdout. */
export const report = (event, fields = {}) => {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
};

/** A /chat socket over `transport` whose session lives in `state` ({nick, session}). */
export const sessionSocket = (serverUrl, transport, state) => {
  const socket = io(`${serverUrl}/chat`, {
    transports: [transport],
    reconnectionDelay: 200,
    reconnectionDelayMax: 1000,
    auth: (send) => send({ nick: state.nick, session: state.session }),
  });
  socket.on('my_response', (greeting) => {
    if (greeting.session) Object.assign(state, { nick: greeting.nick, session: greeting.session });
  });
  return socket;
};
