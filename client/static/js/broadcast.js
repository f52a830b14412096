// "Shout to everyone": my_broadcast_event reaches every client on /chat.

import { request } from './connection.js';
import { byTestId, formatClock, h, nickBadge } from './dom.js';
import { failure } from './notice.js';

const MAX_SHOUTS = 20;

/**
 * Wire the shout form to a /chat socket. A shout arrives as my_response {data, from}, with no
 * user id, so isMineByNick(nick) tells our own apart by nick.
 */
export function initBroadcast({ socket, notify, isMineByNick }) {
  const form = byTestId('broadcast-form');
  const input = byTestId('broadcast-input');
  const log = byTestId('broadcast-log');

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

  /** Show one shout ({data, nick, mine}) at the top of the list. */
  function show({ data, nick, mine }) {
    log.prepend(h('li', { className: mine ? 'shout-item mine' : 'shout-item', dataset: { testid: 'broadcast-item' } },
      h('time', { className: 'line-time', text: formatClock(Date.now()) }),
      nickBadge(nick),
      h('span', { className: 'shout-text', text: data })));
    while (log.childElementCount > MAX_SHOUTS) log.lastElementChild.remove();
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    shout();
  });

  socket.on('my_response', (payload) => {
    if (payload && typeof payload.from === 'string' && typeof payload.data === 'string') {
      show({ data: payload.data, nick: payload.from, mine: isMineByNick(payload.from) });
    }
  });
}
