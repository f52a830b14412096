// The /chat panel: your nick, the rooms you are in, their members, messages and the send box.

import { request } from './connection.js';
import { byTestId, formatClock, h, isNearBottom, nickBadge, scrollToBottom } from './dom.js';
import { failure } from './notice.js';

// ---- Constants --------------------------------------------------------------------------

const MAX_LOG_LINES = 500; // per room; older lines are dropped from the page
const MAX_INPUT_HEIGHT_PX = 160;

/**
 * Wire the chat panel to a /chat socket. notify(message) shows an error; onShout(payload) gets
 * each broadcast ({data, nick, mine}).
 */
export function initChat({ socket, notify, onShout }) {
  // ---- DOM refs -------------------------------------------------------------------------

  const panel = byTestId('message-log').closest('.chat');
  const myNickEl = byTestId('my-nick');
  const joinForm = byTestId('join-form');
  const roomInput = byTestId('room-input');
  const roomList = byTestId('room-list');
  const logTitle = byTestId('active-room');
  const logArea = byTestId('message-log');
  const emptyState = byTestId('empty-state');
  const memberList = byTestId('member-list');
  const memberCount = byTestId('member-count');
  const messageForm = byTestId('message-form');
  const messageInput = byTestId('message-input');
  const sendButton = byTestId('send-button');

  // ---- State ----------------------------------------------------------------------------

  const state = {
    nick: null,
    myNicks: new Set(), // every nick this page has had: a reconnect brings a new one
    welcomePending: true, // the first my_response after each connect carries our nick
    rooms: new Map(), // room name -> room (see createRoom), in the order joined
    active: null, // name of the room shown
    joinsInFlight: 0,
    early: new Map(), // room name -> updates that arrived before that room's join ack
  };

  // ---- Helpers: rooms -------------------------------------------------------------------

  const activeRoom = () => state.rooms.get(state.active) ?? null;

  function createRoom(name) {
    const room = { name, members: [], ids: new Set(), unread: 0, pinned: true };
    room.log = h('div', {
      className: 'room-log',
      dataset: { room: name },
      attrs: { role: 'log', 'aria-live': 'polite', 'aria-label': `Messages in ${name}`, tabindex: 0, hidden: true },
      on: { scroll: () => { room.pinned = isNearBottom(room.log); } },
    });
    room.unreadBadge = h('span', { className: 'unread', dataset: { testid: 'room-unread' }, attrs: { hidden: true } });
    room.selectButton = h('button', {
      className: 'room-select',
      dataset: { testid: 'room-select' },
      attrs: { type: 'button' },
      on: { click: () => selectRoom(name) },
    },
    h('span', { className: 'room-hash', text: '#', attrs: { 'aria-hidden': 'true' } }),
    h('span', { className: 'room-name', text: name }),
    room.unreadBadge);
    const leaveButton = h('button', {
      className: 'room-leave',
      text: '×',
      dataset: { testid: 'room-leave' },
      attrs: { type: 'button', 'aria-label': `Leave ${name}`, title: `Leave ${name}` },
      on: { click: () => leaveRoom(name) },
    });
    room.item = h('li', { className: 'room-item', dataset: { testid: 'room-item', room: name } },
      room.selectButton, leaveButton);
    return room;
  }

  function addRoom(name) {
    const room = createRoom(name);
    state.rooms.set(name, room);
    roomList.append(room.item);
    logArea.append(room.log);
    return room;
  }

  function removeRoom(name) {
    const room = state.rooms.get(name);
    if (!room) return;
    state.rooms.delete(name);
    room.item.remove();
    room.log.remove();
    if (state.active === name) {
      const next = state.rooms.keys().next();
      selectRoom(next.done ? null : next.value);
    }
  }

  function selectRoom(name) {
    state.active = state.rooms.has(name) ? name : null;
    for (const room of state.rooms.values()) {
      const isActive = room.name === state.active;
      room.log.hidden = !isActive;
      room.item.classList.toggle('active', isActive);
      if (isActive) {
        room.selectButton.setAttribute('aria-current', 'true');
        room.unread = 0;
        showUnread(room);
      } else {
        room.selectButton.removeAttribute('aria-current');
      }
    }
    const room = activeRoom();
    emptyState.hidden = room !== null;
    logTitle.textContent = room ? `# ${room.name}` : 'No room selected';
    if (room?.pinned) scrollToBottom(room.log);
    renderMembers();
    updateControls();
  }

  function showUnread(room) {
    room.unreadBadge.hidden = room.unread === 0;
    room.unreadBadge.replaceChildren(room.unread > 99 ? '99+' : String(room.unread),
      h('span', { className: 'visually-hidden', text: ' unread' }));
  }

  function renderMembers() {
    const members = activeRoom()?.members ?? [];
    memberList.replaceChildren(...members.map(renderMember));
    memberCount.textContent = String(members.length);
  }

  function renderMember(nick) {
    const you = nick === state.nick ? h('span', { className: 'you', text: 'you' }) : null;
    return h('li', { className: 'member', dataset: { testid: 'member', nick } },
      nickBadge(nick, { dataset: { testid: 'member-nick' } }), you);
  }

  // ---- Helpers: the log -----------------------------------------------------------------

  /** Put a line into a room's log, before `before` (or at the end), keeping the view pinned. */
  function insertLine(room, node, before = null) {
    const visible = room.name === state.active;
    const stick = visible && isNearBottom(room.log);
    room.log.insertBefore(node, before);
    while (room.log.childElementCount > MAX_LOG_LINES) {
      room.log.firstElementChild.remove();
    }
    if (stick) scrollToBottom(room.log);
  }

  function timeElement(ms) {
    const date = new Date(ms);
    return h('time', {
      className: 'line-time',
      text: formatClock(ms),
      dataset: { testid: 'message-time' },
      attrs: { datetime: date.toISOString(), title: date.toLocaleString() },
    });
  }

  function renderMessage(message) {
    const mine = state.myNicks.has(message.nick);
    return h('div', {
      className: mine ? 'message mine' : 'message',
      dataset: { testid: 'chat-message', id: message.id, nick: message.nick },
    }, timeElement(message.ts),
    nickBadge(message.nick, { dataset: { testid: 'message-nick' } }),
    h('p', { className: 'message-text', text: message.text, dataset: { testid: 'message-text' } }));
  }

  /** Add a chat message unless the room already shows it; messages stay in id order. */
  function addMessage(room, message) {
    if (!isChatMessage(message) || room.ids.has(message.id)) return;
    room.ids.add(message.id);
    // Usually the newest; a message missed while offline can arrive after newer lines.
    let before = null;
    for (let line = room.log.lastElementChild; line; line = line.previousElementSibling) {
      if (line.dataset.testid !== 'chat-message') continue;
      if (Number(line.dataset.id) < message.id) break;
      before = line;
    }
    insertLine(room, renderMessage(message), before);
    if (room.name !== state.active) {
      room.unread += 1;
      showUnread(room);
    }
  }

  /** Add a system line (joins, leaves, connection changes); parts are strings or nodes. */
  function addSystemLine(room, parts, tone = 'info', title = '') {
    insertLine(room, h('p', {
      className: `system ${tone}`,
      dataset: { testid: 'system-message' },
      attrs: { title: title || undefined },
    }, timeElement(Date.now()), h('span', { className: 'system-text' }, ...parts)));
  }

  function applyRoomInfo(room, info) {
    if (Array.isArray(info.members)) room.members = info.members.map(String);
    const plainJoinOrLeave = !('previous_nick' in info) && !('closing' in info);
    if (!plainJoinOrLeave && typeof info.msg === 'string') {
      addSystemLine(room, [info.msg]); // a kind of update this page does not know: say it as is
    } else if (typeof info.nick === 'string') {
      const joined = room.members.includes(info.nick);
      const who = nickBadge(info.nick);
      const you = info.nick === state.nick ? ' (you)' : '';
      addSystemLine(room, [who, `${you} ${joined ? 'joined' : 'left'} the room`],
        joined ? 'join' : 'leave', String(info.msg ?? ''));
    }
    if (room.name === state.active) renderMembers();
  }

  function applyJoinReply(room, reply) {
    if (Array.isArray(reply.members)) room.members = reply.members.map(String);
    for (const message of reply.history ?? []) addMessage(room, message);
    for (const update of state.early.get(room.name) ?? []) update(room);
    state.early.delete(room.name);
    if (room.name === state.active) renderMembers();
  }

  /**
   * The room an event is for. An event for a room we are still joining (it can overtake the
   * join's ack) is kept and replayed once the ack arrives; any other is dropped.
   */
  function roomFor(name, update) {
    const room = state.rooms.get(name);
    if (room) return room;
    if (state.joinsInFlight > 0 && typeof name === 'string') {
      if (!state.early.has(name)) state.early.set(name, []);
      state.early.get(name).push(update);
    }
    return null;
  }

  // ---- Helpers: actions -----------------------------------------------------------------

  async function joinRoom(rawName) {
    const name = rawName.trim();
    if (!name) {
      notify('Type the name of a room to join.');
      roomInput.focus();
      return;
    }
    state.joinsInFlight += 1;
    try {
      const reply = await request(socket, 'join', { room: name });
      const room = state.rooms.get(reply.room) ?? addRoom(reply.room);
      applyJoinReply(room, reply);
      selectRoom(room.name);
      roomInput.value = '';
      messageInput.focus();
    } catch (error) {
      notify(failure('Could not join the room', error));
    } finally {
      finishJoin();
    }
  }

  function finishJoin() {
    state.joinsInFlight -= 1;
    if (state.joinsInFlight === 0) state.early.clear();
  }

  async function leaveRoom(name) {
    try {
      await request(socket, 'leave', { room: name });
      removeRoom(name);
    } catch (error) {
      if (error.code === 'not_in_room') removeRoom(name);
      notify(failure(`Could not leave ${name}`, error));
    }
  }

  /** After a reconnect the server has forgotten our rooms: join each again. */
  async function rejoinRooms() {
    const rooms = [...state.rooms.values()];
    state.joinsInFlight += rooms.length;
    await Promise.all(rooms.map(async (room) => {
      try {
        const reply = await request(socket, 'join', { room: room.name });
        addSystemLine(room, ['Reconnected.'], 'ok');
        applyJoinReply(room, reply);
      } catch (error) {
        addSystemLine(room, ['Could not rejoin this room.'], 'warn');
        notify(failure(`Could not rejoin ${room.name}`, error));
      } finally {
        finishJoin();
      }
    }));
  }

  async function sendMessage() {
    const room = activeRoom();
    const text = messageInput.value;
    if (!room) {
      notify('Join a room before sending a message.');
      roomInput.focus();
      return;
    }
    if (!text.trim()) return;
    setInput('');
    try {
      await request(socket, 'room_message', { room: room.name, text });
    } catch (error) {
      if (!messageInput.value) setInput(text); // give the text back so nothing is lost
      notify(failure('Message not sent', error));
    }
  }

  function setInput(value) {
    messageInput.value = value;
    fitInput();
    updateControls();
  }

  function fitInput() {
    messageInput.style.height = 'auto';
    messageInput.style.height = `${Math.min(messageInput.scrollHeight + 2, MAX_INPUT_HEIGHT_PX)}px`;
  }

  function updateControls() {
    const room = activeRoom();
    const online = socket.connected;
    panel.dataset.online = String(online); // members shown offline are stale
    sendButton.disabled = !online || !room || !messageInput.value.trim();
    if (!online) {
      messageInput.placeholder = 'Offline: waiting to reconnect…';
    } else {
      messageInput.placeholder = room ? `Message #${room.name}` : 'Join a room to start chatting';
    }
  }

  function setNick(nick) {
    state.nick = nick;
    state.myNicks.add(nick);
    myNickEl.textContent = nick;
    renderMembers();
  }

  // ---- Keyboard events ------------------------------------------------------------------

  messageInput.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendMessage();
    }
  });

  messageInput.addEventListener('input', () => {
    fitInput();
    updateControls();
  });

  // ---- Form and click events ------------------------------------------------------------

  joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    joinRoom(roomInput.value);
  });

  messageForm.addEventListener('submit', (event) => {
    event.preventDefault();
    sendMessage();
  });

  // ---- Socket events --------------------------------------------------------------------

  socket.on('my_response', (payload) => {
    if (!payload || typeof payload !== 'object') return;
    if (state.welcomePending && payload.data === 'Connected' && typeof payload.nick === 'string') {
      state.welcomePending = false;
      setNick(payload.nick);
    } else if (typeof payload.from === 'string') {
      onShout?.({ data: String(payload.data), nick: payload.from, mine: state.myNicks.has(payload.from) });
    }
  });

  socket.on('room_info', (info) => {
    if (!info || typeof info !== 'object') return;
    const update = (room) => applyRoomInfo(room, info);
    const room = roomFor(info.room, update);
    if (room) update(room);
  });

  socket.on('chat_message', (message) => {
    if (!isChatMessage(message)) return;
    const update = (room) => addMessage(room, message);
    const room = roomFor(message.room, update);
    if (room) update(room);
  });

  socket.on('error', (reply) => {
    notify(failure(`The server refused "${reply?.event ?? 'a request'}"`, reply?.error));
  });

  socket.on('connect', () => {
    updateControls();
    rejoinRooms();
  });

  socket.on('disconnect', () => {
    state.welcomePending = true;
    for (const room of state.rooms.values()) {
      addSystemLine(room, ['Connection lost. Reconnecting…'], 'warn');
    }
    updateControls();
  });

  selectRoom(null);
}

function isChatMessage(message) {
  return Boolean(message) && typeof message === 'object' && Number.isInteger(message.id)
    && typeof message.room === 'string' && typeof message.nick === 'string'
    && typeof message.text === 'string' && Number.isFinite(message.ts);
}
