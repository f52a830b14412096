// Your nick: shown in the chat panel's head, changed with the nick form and kept in
// localStorage, so that a reload or a reconnect asks the server for the same one again.

import { request } from './connection.js';
import { byTestId } from './dom.js';
import { failure } from './notice.js';

// ---- Constants --------------------------------------------------------------------------

const STORAGE_KEY = 'relay.nick';
// When the nick asked for on connect is still held (say, by this page's own connection that
// the server has not noticed is gone yet), try to take it back a few times, then give up.
const RECLAIM_DELAYS_MS = [1000, 3000, 10000];

/**
 * Wire the nick display and form to a /chat socket. Returns
 * { nick(), isMine(nick), onChange(listener), auth() }: auth() is the payload for the socket's
 * connect (`{nick}` or `{}`); listener(nick, previous) runs on every change of nick.
 */
export function initNick({ socket, notify }) {
  // ---- DOM refs -------------------------------------------------------------------------

  const meLine = byTestId('me');
  const myNickEl = byTestId('my-nick');
  const editButton = byTestId('nick-edit');
  const form = byTestId('nick-form');
  const input = byTestId('nick-input');
  const saveButton = byTestId('nick-save');
  const cancelButton = byTestId('nick-cancel');

  // ---- State ----------------------------------------------------------------------------

  const state = {
    nick: null,
    known: new Set(), // every nick this page has had: its old messages are still its own
    asked: null, // the nick asked for on the latest connect
    listeners: [],
    reclaimTimer: null,
    saving: false,
  };

  // ---- Helpers: storage -----------------------------------------------------------------
  // localStorage may be unavailable (privacy settings): the nick then lasts as long as the page.

  function loadSaved() {
    try {
      return localStorage.getItem(STORAGE_KEY) || null;
    } catch {
      return null;
    }
  }

  function save(nick) {
    try {
      localStorage.setItem(STORAGE_KEY, nick);
    } catch {
      // not kept: nothing else to do
    }
  }

  // ---- Helpers: the nick ----------------------------------------------------------------

  const sameNick = (a, b) => typeof a === 'string' && typeof b === 'string'
    && a.toLowerCase() === b.toLowerCase();

  function setNick(nick) {
    const previous = state.nick;
    state.nick = nick;
    state.known.add(nick);
    myNickEl.textContent = nick;
    editButton.disabled = false;
    if (previous !== nick) {
      for (const listener of state.listeners) listener(nick, previous);
    }
  }

  /** What to ask for on connect: the nick this page has (a reconnect), else the saved one. */
  function auth() {
    state.asked = state.nick ?? loadSaved();
    return state.asked ? { nick: state.asked } : {};
  }

  /** The connect greeting tells which nick the server gave: the one asked for, or a guest's. */
  function greet(nick) {
    setNick(nick);
    if (state.asked && !sameNick(nick, state.asked)) {
      notify(`The nick "${state.asked}" is in use right now, so you are ${nick} for the moment.`
        + ' This page will try to get it back.', 'info');
      reclaim(state.asked, 0);
    }
  }

  function reclaim(wanted, attempt) {
    stopReclaim();
    if (attempt >= RECLAIM_DELAYS_MS.length) return;
    state.reclaimTimer = setTimeout(async () => {
      state.reclaimTimer = null;
      if (!socket.connected || sameNick(state.nick, wanted)) return;
      try {
        const reply = await request(socket, 'set_nick', { nick: wanted });
        setNick(reply.nick);
      } catch (error) {
        if (error.code === 'nick_taken' || error.code === 'rate_limited') reclaim(wanted, attempt + 1);
      }
    }, RECLAIM_DELAYS_MS[attempt]);
  }

  function stopReclaim() {
    clearTimeout(state.reclaimTimer);
    state.reclaimTimer = null;
  }

  async function changeNick(raw) {
    const nick = raw.trim();
    if (!nick) {
      notify('Type the nick you want.');
      input.focus();
      return;
    }
    if (nick === state.nick) {
      closeForm();
      return;
    }
    state.saving = true;
    renderForm();
    try {
      const reply = await request(socket, 'set_nick', { nick });
      stopReclaim();
      save(reply.nick);
      setNick(reply.nick);
      closeForm();
    } catch (error) {
      notify(failure('Could not change your nick', error));
      input.focus();
      input.select();
    } finally {
      state.saving = false;
      renderForm();
    }
  }

  // ---- Helpers: the form ----------------------------------------------------------------

  function openForm() {
    meLine.hidden = true;
    form.hidden = false;
    input.value = state.nick ?? '';
    renderForm();
    input.focus();
    input.select();
  }

  function closeForm() {
    form.hidden = true;
    meLine.hidden = false;
    editButton.focus();
  }

  function renderForm() {
    saveButton.disabled = state.saving || !socket.connected;
    input.readOnly = state.saving;
  }

  // ---- Form and click events ------------------------------------------------------------

  editButton.addEventListener('click', openForm);
  cancelButton.addEventListener('click', closeForm);

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!state.saving) changeNick(input.value);
  });

  input.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.stopPropagation(); // Escape here cancels the form, not the toast
      closeForm();
    }
  });

  // ---- Socket events --------------------------------------------------------------------

  // The greeting is my_response {data: "Connected", nick}; a broadcast carries `from` instead.
  socket.on('my_response', (payload) => {
    if (payload && payload.data === 'Connected' && typeof payload.nick === 'string') {
      greet(payload.nick);
    }
  });

  socket.on('connect', renderForm);
  socket.on('disconnect', () => {
    stopReclaim();
    renderForm();
  });

  editButton.disabled = true; // until the server names us

  return {
    nick: () => state.nick,
    isMine: (nick) => state.known.has(nick),
    onChange: (listener) => state.listeners.push(listener),
    auth,
  };
}
