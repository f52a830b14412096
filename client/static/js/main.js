// Entry point: open the two Socket.IO namespaces (one shared connection) and wire the panels.

import { io } from '/vendor/socket.io.esm.min.js';
import { initBroadcast } from './broadcast.js';
import { initChat } from './chat.js';
import { watchConnection } from './connection.js';
import { byTestId } from './dom.js';
import { createNotifier } from './notice.js';
import { initTicker } from './ticker.js';

// ---- Constants --------------------------------------------------------------------------

const CHAT_NAMESPACE = '/chat';
const TICKER_NAMESPACE = '/test_conn';

// ---- Sockets ----------------------------------------------------------------------------
// Created without connecting, so every handler is in place before the first event arrives.
// Both share one connection (socket.io multiplexes namespaces) and reconnect on their own.

const chatSocket = io(CHAT_NAMESPACE, { autoConnect: false });
const tickerSocket = io(TICKER_NAMESPACE, { autoConnect: false });

// ---- Wiring -----------------------------------------------------------------------------

const notify = createNotifier(document.querySelector('.toast'));

watchConnection(chatSocket, byTestId('chat-status'), { onServerError: notify });
watchConnection(tickerSocket, byTestId('ticker-status'), { onServerError: notify });

const shouts = initBroadcast({ socket: chatSocket, notify });
initChat({ socket: chatSocket, notify, onShout: shouts.show });
initTicker({ socket: tickerSocket, notify });

chatSocket.connect();
tickerSocket.connect();
