// "Ana is typing…": tell a room while you type in it, and show who else types in the room shown.

import { request } from './connection.js';
import { h, nickBadge } from './dom.js';

// ---- Constants --------------------------------------------------------------------------

// The server drops a typing flag 5 s after its last refresh; refresh well before that, but
// never more often than this, whatever the typing speed.
const REFRESH_MS = 2000;

/**
 * Wire the typing indicator (a status line under the log) to a /chat socket. Returns
 * { inputChanged(conv, text), set(room, nick, typing), rename(room, previous, nick),
 *   clearRoom(room) }.
 */
export function initTyping({ socket, shell, me, indicator }) {
  // ---- State ----------------------------------------------------------------------------

  const state = {
    mine: null, // {room, sentAt} while we have told a room that we are typing
    typers: new Map(), // room -> Set of the nicks typing there, in the order they started
  };

  // ---- Helpers: our own typing ----------------------------------------------------------

  function announce(room, typing) {
    if (!socket.connected) return;
    // Nothing to tell the person if it fails: a flag that was not cleared expires by itself.
    request(socket, 'typing', { room, typing }).catch(() => {});
  }

  /** The send box of `conv` now holds `text`: start, refresh or stop our typing flag. */
  function inputChanged(conv, text) {
    const room = conv?.kind === 'room' ? conv.name : null;
    const typing = room !== null && text.trim() !== '';
    if (state.mine && (!typing || state.mine.room !== room)) stopMine();
    if (!typing) return;
    const now = Date.now();
    if (state.mine && now - state.mine.sentAt < REFRESH_MS) return;
    state.mine = { room, sentAt: now };
    announce(room, true);
  }

  function stopMine() {
    if (!state.mine) return;
    announce(state.mine.room, false);
    state.mine = null;
  }

  // ---- Helpers: other people ------------------------------------------------------------

  function set(room, nick, typing) {
    let nicks = state.typers.get(room);
    if (typing) {
      if (!nicks) state.typers.set(room, nicks = new Set());
      nicks.add(nick);
    } else if (nicks) {
      nicks.delete(nick);
      if (nicks.size === 0) state.typers.delete(room);
    }
    render();
  }

  function rename(room, previous, nick) {
    const nicks = state.typers.get(room);
    if (!nicks?.has(previous)) return;
    state.typers.set(room, new Set([...nicks].map((each) => (each === previous ? nick : each))));
    render();
  }

  function clearRoom(room) {
    if (state.mine?.room === room) state.mine = null;
    state.typers.delete(room);
    render();
  }

  function render() {
    const conv = shell.active();
    const nicks = conv?.kind === 'room' ? [...(state.typers.get(conv.name) ?? [])] : [];
    indicator.dataset.count = String(nicks.length);
    indicator.replaceChildren(...describe(nicks));
  }

  // ---- Wiring ---------------------------------------------------------------------------

  shell.onSelect((active) => {
    if (state.mine && (active?.kind !== 'room' || active.name !== state.mine.room)) stopMine();
    render();
  });

  socket.on('typing', (payload) => {
    if (!payload || typeof payload.room !== 'string' || typeof payload.nick !== 'string') return;
    if (payload.nick === me.nick()) return;
    set(payload.room, payload.nick, payload.typing === true);
  });

  socket.on('disconnect', () => {
    // The server forgets every flag of a connection that goes; so do we.
    state.mine = null;
    state.typers.clear();
    render();
  });

  render();
  return { inputChanged, set, rename, clearRoom };
}

/** "Ana is typing…", "Ana and Bob are typing…", "Several people are typing…". */
function describe(nicks) {
  if (nicks.length === 0) return [];
  const dots = h('span', { className: 'typing-dots', attrs: { 'aria-hidden': 'true' } },
    h('span'), h('span'), h('span'));
  if (nicks.length === 1) return [dots, nickBadge(nicks[0]), ' is typing…'];
  if (nicks.length === 2) return [dots, nickBadge(nicks[0]), ' and ', nickBadge(nicks[1]), ' are typing…'];
  return [dots, 'Several people are typing…'];
}
