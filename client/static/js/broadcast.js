// "Shout to everyone": my_broadcast_event reaches every client on /chat. The server keeps no
// shouts, so this tab keeps the ones it received: a reload shows them again, as it shows the
// rest of the chat.

import { request } from './connection.js';
import { byTestId, formatClock, h, nickBadge } from './dom.js';
import { failure } from './notice.js';
import { readTab, writeTab } from './session.js';

const MAX_SHOUTS = 20;
const TAB_SHOUTS = 'shouts'; // [{data, nick, mine, ts}], newest first

/**
 * Wire the shout form to a /chat socket. A shout arrives as my_response {data, from}, with no
 * user id, so isMineByNick(nick) tells our own apart by nick.
 */
export function initBroadcast({ socket, notify, isMineByNick }) {
  const form = byTestId('broadcast-form');
  const input = byTestId('broadcast-input');
  const log = byTestId('broadcast-log');
  const shouts = readShouts();

  async function shout() {
    const text = input.value;
    if (!text.trim()) {
      input.focus();
      return;
    }
    input.value = '';
    try {
      await request(socket, 'my_broadcast_event', { data: text });
    } catch (error) {
      if (!input.value) input.value = text;
      notify(failure('Shout not sent', error));
    }
  }

  /** Show one shout ({data, nick, mine, ts}) at the top of the list. */
  function show({ data, nick, mine, ts }) {
    log.prepend(h('li', { className: mine ? 'shout-item mine' : 'shout-item', dataset: { testid: 'broadcast-item' } },
      h('time', { className: 'line-time', text: formatClock(ts), attrs: { datetime: new Date(ts).toISOString() } }),
      nickBadge(nick),
      h('span', { className: 'shout-text', text: data })));
    while (log.childElementCount > MAX_SHOUTS) log.lastElementChild.remove();
  }

  function receive(item) {
    show(item);
    shouts.unshift(item);
    shouts.splice(MAX_SHOUTS);
    writeTab(TAB_SHOUTS, shouts);
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    shout();
  });

  socket.on('my_response', (payload) => {
    if (payload && typeof payload.from === 'string' && typeof payload.data === 'string') {
      receive({ data: payload.data, nick: payload.from, mine: isMineByNick(payload.from), ts: Date.now() });
    }
  });

  for (const item of [...shouts].reverse()) show(item);
}

/** The shouts this tab kept before a reload, newest first. */
function readShouts() {
  const kept = readTab(TAB_SHOUTS, []);
  return (Array.isArray(kept) ? kept : []).filter((item) => item && typeof item.data === 'string'
    && typeof item.nick === 'string' && Number.isFinite(item.ts)).slice(0, MAX_SHOUTS)
    .map(({ data, nick, mine, ts }) => ({ data, nick, mine: mine === true, ts }));
}
