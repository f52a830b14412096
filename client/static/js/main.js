// Entry point: open the two Socket.IO namespaces (one shared connection) and wire the panels.

import { io } from '/vendor/socket.io.esm.min.js';
import { initBroadcast } from './broadcast.js';
import { initChat } from './chat.js';
import { watchConnection } from './connection.js';
import { byTestId } from './dom.js';
import { initNick } from './nick.js';
import { createNotifier } from './notice.js';
import { forgetRefusedSession, signInAuth } from './session.js';
import { initTicker } from './ticker.js';

// ---- Constants --------------------------------------------------------------------------

const CHAT_NAMESPACE = '/chat';
const TICKER_NAMESPACE = '/test_conn';

// ---- Sockets ----------------------------------------------------------------------------
// Created without connecting, so every handler is in place before the first event arrives.
// Both share one connection (socket.io multiplexes namespaces) and reconnect on their own.
// Each connect of /chat asks for our nick and presents this tab's session token (auth is read
// again on every reconnect); both present the sign-in token, if the page was given one.

const chatSocket = io(CHAT_NAMESPACE, {
  autoConnect: false,
  auth: (send) => send(me.auth()),
});
const tickerSocket = io(TICKER_NAMESPACE, {
  autoConnect: false,
  auth: (send) => send(signInAuth()),
});

// ---- Wiring -----------------------------------------------------------------------------

const notify = createNotifier(document.querySelector('.toast'));

// A chat the server closed on purpose (flooding, or the session moved to another tab) waits
// for its Reconnect button (see chat.js). A session token the server no longer takes is
// forgotten, and the chat connects again as a new session.
watchConnection(chatSocket, byTestId('chat-status'), {
  onServerError: notify, onRefused: forgetRefusedSession, retryWhenKicked: false,
});
watchConnection(tickerSocket, byTestId('ticker-status'), { onServerError: notify });

const me = initNick({ socket: chatSocket, notify });
initBroadcast({ socket: chatSocket, notify, isMineByNick: me.isMineByNick });
initChat({ socket: chatSocket, notify, me });
initTicker({ socket: tickerSocket, notify });

chatSocket.connect();
tickerSocket.connect();
