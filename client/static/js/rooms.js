// Rooms: joining and leaving, their members and messages, their history (catching up after a
// reconnect or a reload, fetching a message that went missing, "Load older messages") and closing
// a room.
//
// Each room keeps a cursor (cursor.js): the highest id up to which it holds every message. A
// reconnect, a reload and every catch-up start from it, and a message received past a missing one
// (live, or in a page) makes the room fetch what is missing with history {since_id: cursor}.

import { request } from './connection.js';
import { conversationKey, createConversation } from './conversation.js';
import { createCursor } from './cursor.js';
import { byTestId, nickBadge } from './dom.js';
import { failure } from './notice.js';
import { readTab, writeTab } from './session.js';

// ---- Constants --------------------------------------------------------------------------

const OLDER_PAGE = 50; // messages per "Load older messages"
const CATCH_UP_PAGE = 200; // the server's largest history page
const RELOAD_CONTEXT = 50; // after a reload, messages up to its cursor shown again
const RATE_LIMIT_RETRIES = 3; // a rejoin refused for going too fast is tried again, this often
const RATE_LIMIT_PAUSE_MS = 1500;
const TAB_ROOMS = 'rooms'; // this tab's rooms: [{room, lastId: its cursor}], in the order joined

/**
 * Wire the join form and the room events of a /chat socket into the chat panel (shell).
 * onRename(previous, nick) is told when someone in one of our rooms changes nick.
 */
export function initRooms({ socket, notify, shell, me, typing, outbox, onRename }) {
  // ---- DOM refs -------------------------------------------------------------------------

  const joinForm = byTestId('join-form');
  const roomInput = byTestId('room-input');

  // ---- State ----------------------------------------------------------------------------

  const state = {
    joinsInFlight: 0,
    early: new Map(), // room name -> updates that arrived before that room's join ack
    saveQueued: false,
  };

  // ---- Helpers: rooms -------------------------------------------------------------------

  const roomOf = (name) => shell.get(conversationKey('room', name)) ?? null;
  const isOpen = (conv) => shell.get(conv.key) === conv;

  function openRoom(name) {
    const cursor = createCursor();
    const conv = createConversation({
      kind: 'room',
      name,
      isMine: me.isMine,
      onSelect: shell.select,
      onClose: leaveRoom,
      onLoadOlder: loadOlder,
      onAdded: messageAdded,
      cursor,
    });
    conv.cursor = cursor;
    conv.joined = false; // whether this connection is a member (set by each join ack)
    conv.sync = 0; // which join of the room is current: fetches for an earlier one stop
    conv.fetching = null; // the sync of the fetch of missing messages under way, if any
    conv.behind = false; // a catch-up page said more messages follow (`more`)
    conv.checkQueued = false;
    conv.resumeFrom = null; // restored after a reload: the cursor before it
    conv.shownBefore = null; // after a reload: messages up to it were shown before, not new
    conv.owner = null; // the nick of the member who may close the room, as the server says
    conv.send = (text) => outbox.send(conv, text);
    shell.add(conv);
    remember();
    return conv;
  }

  function dropRoom(conv) {
    outbox.drop(conv);
    typing.clearRoom(conv.name);
    shell.remove(conv);
    remember();
  }

  /**
   * Add the messages of a page (oldest first) that came after `since` (null: the newest of the
   * room); returns how many were new. Those shown before a reload are shown again, neither
   * counted nor unread.
   */
  function addPage(conv, messages, since) {
    if (messages.length && since !== null) conv.cursor.noneBetween(since, messages[0].id);
    let added = 0;
    for (const message of messages) {
      const missed = conv.shownBefore === null || message.id > conv.shownBefore;
      if (conv.addMessage(message, { quiet: !missed }) && missed) added += 1;
    }
    remember(); // the cursor may have moved without a message (noneBetween)
    return added;
  }

  /**
   * Apply a join ack; returns how many messages it brought that were new. since: the since_id
   * it was asked with, where the cursor starts if it has not yet; null (a fresh join) brings
   * the newest messages, and `more` is then about older ones, which are "Load older" and not
   * missing: the cursor starts before the first.
   */
  function applyJoin(conv, reply, since) {
    conv.joined = true;
    conv.sync += 1;
    if (Array.isArray(reply.members)) setMembers(conv, reply.members);
    setOwner(conv, reply);
    const history = chatMessages(reply.history);
    conv.cursor.begin(since ?? (history.length ? history[0].id - 1 : 0));
    if (since === null) conv.setOlder({ more: reply.more === true });
    conv.behind = since !== null && reply.more === true;
    const added = addPage(conv, history, since);
    for (const update of state.early.get(conv.name) ?? []) update(conv);
    state.early.delete(conv.name);
    if (shell.isActive(conv)) shell.refresh();
    return added;
  }

  /** A message went into the log: keep the cursor, and look for a gap once the task is done. */
  function messageAdded(conv) {
    remember();
    if (conv.checkQueued) return;
    conv.checkQueued = true;
    queueMicrotask(() => {
      conv.checkQueued = false;
      if (!conv.cursor.hasGap() && !conv.behind) return;
      // A failure is tried again with the next message or the reconnect, never in a loop.
      fetchMissing(conv).catch(() => {});
    });
  }

  /** The member who may close the room (its longest-standing), named by a join or room_info. */
  function setOwner(conv, update) {
    if ('owner' in update) conv.owner = typeof update.owner === 'string' ? update.owner : null;
  }

  /** A room's members; they also tell which nicks someone else holds now (see nick.js). */
  function setMembers(conv, members) {
    conv.members = members.map(String);
    me.noteHeld(conv.members);
  }

  function applyRoomInfo(conv, info) {
    if (info.closing === true) {
      closed(conv, info);
      return;
    }
    if (Array.isArray(info.members)) setMembers(conv, info.members);
    setOwner(conv, info);
    const who = typeof info.nick === 'string' ? info.nick : null;
    if (who && typeof info.previous_nick === 'string') {
      showRename(conv, info.previous_nick, who, info.msg);
    } else if (who && !('previous_nick' in info) && !('closing' in info)) {
      showJoinOrLeave(conv, who, info.msg);
    } else if (typeof info.msg === 'string') {
      conv.addSystemLine([info.msg]); // a kind of update this page does not know: say it as is
    }
    if (shell.isActive(conv)) shell.refresh();
  }

  function showRename(conv, previous, nick, msg) {
    const you = [previous, nick].includes(me.nick()) ? ' (you)' : '';
    conv.addSystemLine([nickBadge(previous), ' is now known as ', nickBadge(nick), you],
      'info', String(msg ?? ''));
    typing.rename(conv.name, previous, nick);
    onRename(previous, nick);
  }

  function showJoinOrLeave(conv, nick, msg) {
    const joined = conv.members.includes(nick);
    const you = nick === me.nick() ? ' (you)' : '';
    if (joined && you && conv.rejoining) return; // the "Reconnected" line says it
    conv.addSystemLine([nickBadge(nick), `${you} ${joined ? 'joined' : 'left'} the room`],
      joined ? 'join' : 'leave', String(msg ?? ''));
    if (!joined) typing.set(conv.name, nick, false);
  }

  /** The room was closed (by us or by its longest-standing member): its tab goes. */
  function closed(conv, info) {
    if (!isOpen(conv)) return;
    dropRoom(conv);
    const by = typeof info.nick === 'string' ? info.nick : null;
    notify(by && by === me.nick() ? `You closed #${conv.name}.`
      : `#${conv.name} was closed${by ? ` by ${by}` : ''}. You are no longer in it.`, 'info');
  }

  /**
   * The room an event is for. An event for a room we are still joining (it can overtake the
   * join's ack) is kept and replayed once the ack arrives; any other is dropped.
   */
  function roomFor(name, update) {
    const conv = typeof name === 'string' ? roomOf(name) : null;
    if (conv) return conv;
    if (state.joinsInFlight > 0 && typeof name === 'string') {
      if (!state.early.has(name)) state.early.set(name, []);
      state.early.get(name).push(update);
    }
    return null;
  }

  function finishJoin() {
    state.joinsInFlight -= 1;
    if (state.joinsInFlight === 0) state.early.clear();
  }

  // ---- Helpers: what this tab keeps -----------------------------------------------------
  // The rooms this tab is in, with the cursor of each, outlive a reload: the page joins them
  // again from there, so their history goes on without a gap.

  /** Keep the rooms once the current task is done, however many messages it added. */
  function remember() {
    if (state.saveQueued) return;
    state.saveQueued = true;
    queueMicrotask(() => {
      state.saveQueued = false;
      writeTab(TAB_ROOMS, shell.conversations('room')
        .map((conv) => ({ room: conv.name, lastId: conv.cursor.value() ?? conv.resumeFrom })));
    });
  }

  /** Put back the tabs of the rooms this tab was in; they are joined again on connect. */
  function restoreRooms() {
    const saved = readTab(TAB_ROOMS, []);
    for (const entry of Array.isArray(saved) ? saved : []) {
      if (typeof entry?.room !== 'string' || !entry.room || roomOf(entry.room)) continue;
      const conv = openRoom(entry.room);
      conv.resumeFrom = Number.isInteger(entry.lastId) && entry.lastId >= 0 ? entry.lastId : null;
    }
  }

  // ---- Helpers: actions -----------------------------------------------------------------

  async function joinRoom(rawName) {
    const name = rawName.trim();
    if (!name) {
      notify('Type the name of a room to join.');
      roomInput.focus();
      return;
    }
    const known = roomOf(name);
    if (known?.joined) {
      shell.select(known);
      roomInput.value = '';
      shell.focusInput();
      return;
    }
    state.joinsInFlight += 1;
    try {
      let conv = known;
      if (conv) {
        await rejoin(conv); // a room whose rejoin failed: catch up from its cursor
      } else {
        const reply = await request(socket, 'join', { room: name });
        conv = roomOf(reply.room) ?? openRoom(reply.room);
        applyJoin(conv, reply, null);
      }
      shell.select(conv);
      roomInput.value = '';
      shell.focusInput();
      outbox.flush();
    } catch (error) {
      notify(failure('Could not join the room', error));
    } finally {
      finishJoin();
    }
  }

  async function leaveRoom(conv) {
    if (!socket.connected) {
      dropRoom(conv); // the server let go of our rooms when the connection went
      return;
    }
    try {
      await request(socket, 'leave', { room: conv.name });
      dropRoom(conv);
    } catch (error) {
      if (error.code === 'not_in_room') dropRoom(conv);
      notify(failure(`Could not leave ${conv.name}`, error));
    }
  }

  async function closeRoom(conv) {
    try {
      await request(socket, 'close_room', { room: conv.name });
      closed(conv, { nick: me.nick() }); // usually done already, by the room_info before the ack
    } catch (error) {
      notify(failure(`Could not close #${conv.name}`, error));
    }
  }

  async function loadOlder(conv) {
    if (conv.loadingOlder) return;
    conv.setOlder({ loading: true });
    try {
      const before = conv.oldestId();
      const reply = await request(socket, 'history',
        before === null ? { room: conv.name, limit: OLDER_PAGE } : { room: conv.name, before_id: before, limit: OLDER_PAGE });
      conv.addOlder((reply.messages ?? []).filter(isChatMessage));
      conv.setOlder({ more: reply.more === true, loading: false });
    } catch (error) {
      conv.setOlder({ loading: false });
      notify(failure('Could not load older messages', error));
    }
  }

  /**
   * Join a room again after a reconnect or a reload and fetch what was missed: every message
   * after its cursor, page by page, merged by id (after a reload, from a page before the
   * cursor, so that the log shows where it was). Returns how many messages were new.
   */
  async function rejoin(conv) {
    const reloaded = conv.cursor.value() === null && conv.resumeFrom !== null;
    // Ids go up by one per room: a page before the cursor is the log as it was.
    const sinceId = reloaded ? Math.max(0, conv.resumeFrom - RELOAD_CONTEXT) : conv.cursor.value();
    if (reloaded) conv.shownBefore = conv.resumeFrom;
    conv.rejoining = true; // our own "joined" announcement comes before the ack
    let reply;
    try {
      reply = await patiently('join',
        sinceId === null ? { room: conv.name } : { room: conv.name, since_id: sinceId });
    } finally {
      conv.rejoining = false;
    }
    if (!isOpen(conv)) return 0;
    let added = applyJoin(conv, reply, sinceId);
    if (reloaded) conv.setOlder({ more: sinceId > 0 });
    try {
      added += await fetchMissing(conv);
    } catch {
      // Joined all the same: the rest comes with the next message or the next reconnect.
      if (socket.connected) {
        conv.addSystemLine(['Some missed messages could not be fetched yet.'], 'warn');
      }
    }
    return added;
  }

  /**
   * Fetch what the room is missing after its cursor, page by page with history {since_id:
   * cursor}: the rest of a catch-up (`more`) and any gap a message showed (a live delivery
   * lost, or one that overtook the messages still to fetch). Pages follow the cursor, not the
   * newest message shown, and every page is checked again for gaps. One fetch per room at a
   * time (a join makes the ones for an earlier join stop); while one runs, another call
   * returns 0 at once. Returns how many messages it added that were new; throws if a request
   * fails, leaving the rest for the next message or reconnect.
   */
  async function fetchMissing(conv) {
    const { sync } = conv;
    if (conv.fetching === sync) return 0;
    conv.fetching = sync;
    let added = 0;
    try {
      while (isOpen(conv) && conv.joined && conv.sync === sync
             && (conv.behind || conv.cursor.hasGap())) {
        const since = conv.cursor.value();
        const page = await patiently('history',
          { room: conv.name, since_id: since, limit: CATCH_UP_PAGE });
        const messages = chatMessages(page.messages);
        added += addPage(conv, messages, since);
        if (conv.sync !== sync) break;
        conv.behind = page.more === true;
        // Nothing after the cursor came: asking again now would not help (no hot loop).
        if (conv.cursor.value() === since) break;
      }
    } finally {
      if (conv.fetching === sync) conv.fetching = null;
    }
    return added;
  }

  async function rejoinRooms() {
    const convs = shell.conversations('room');
    state.joinsInFlight += convs.length;
    await Promise.all(convs.map(async (conv) => {
      try {
        const added = await rejoin(conv);
        conv.addSystemLine([added === 0 ? 'Reconnected.'
          : `Reconnected: ${added} new message${added === 1 ? '' : 's'} while you were away.`], 'ok');
      } catch (error) {
        conv.addSystemLine(['Could not rejoin this room.'], 'warn');
        notify(failure(`Could not rejoin ${conv.name}`, error));
      } finally {
        finishJoin();
      }
    }));
    outbox.flush();
  }

  /** A request that waits and tries again when refused for going too fast (many rooms). */
  async function patiently(event, payload) {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await request(socket, event, payload);
      } catch (error) {
        if (error.code !== 'rate_limited' || attempt >= RATE_LIMIT_RETRIES) throw error;
        await new Promise((resolve) => { setTimeout(resolve, RATE_LIMIT_PAUSE_MS); });
      }
    }
  }

  // ---- Room messages through the outbox -------------------------------------------------

  outbox.define('room', {
    event: 'room_message',
    payload: (conv, text, clientId) => ({ room: conv.name, text, client_id: clientId }),
    ready: (conv) => conv.joined,
    notSent: () => 'Message not sent',
    accepted: (conv, reply, entry) => ({
      id: reply.id, nick: me.nick(), user_id: me.userId(), text: entry.text, ts: entry.ts,
    }),
  });

  // ---- Form events ----------------------------------------------------------------------

  joinForm.addEventListener('submit', (event) => {
    event.preventDefault();
    joinRoom(roomInput.value);
  });

  // ---- Socket events --------------------------------------------------------------------

  socket.on('room_info', (info) => {
    if (!info || typeof info !== 'object') return;
    const update = (conv) => applyRoomInfo(conv, info);
    const conv = roomFor(info.room, update);
    if (conv) update(conv);
  });

  socket.on('chat_message', (message) => {
    if (!isChatMessage(message)) return;
    const update = (conv) => {
      if (!outbox.claim(conv, message)) conv.addMessage(message);
      typing.set(conv.name, message.nick, false);
    };
    const conv = roomFor(message.room, update);
    if (conv) update(conv);
  });

  socket.on('connect', rejoinRooms);

  socket.on('disconnect', () => {
    // The server let go of every room with the connection: each is joined again on connect.
    for (const conv of shell.conversations('room')) conv.joined = false;
  });

  restoreRooms();
  return { close: closeRoom };
}

/** The chat messages of a page, in id order (a page is oldest first already). */
function chatMessages(messages) {
  return (Array.isArray(messages) ? messages : []).filter(isChatMessage)
    .sort((a, b) => a.id - b.id);
}

function isChatMessage(message) {
  return Boolean(message) && typeof message === 'object' && Number.isInteger(message.id)
    && typeof message.room === 'string' && typeof message.nick === 'string'
    && typeof message.text === 'string' && Number.isFinite(message.ts);
}
