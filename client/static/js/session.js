// This tab's session: the token the server gave it, and what the page should find again after a
// reload (its nick, rooms, direct messages, the conversation shown). It belongs to one tab: two
// tabs are two sessions, a reload stays one.
//
// sessionStorage alone cannot tell a reload from a duplicated tab (a duplicate gets a copy of it,
// and with the token it would take over our session and nick). So the page reads its state from
// sessionStorage once, at load, and takes it out; it keeps it in memory and writes it back only
// when the page goes (pagehide), where the reload finds it. A tab duplicated meanwhile finds none
// and starts a session of its own.
// The token is a secret: it is sent only in the socket's auth, never logged or shown. A server
// that no longer takes it (its SECRET_KEY changed) refuses the connect as invalid_session: the
// tab then forgets it and starts a new session.
//
// On a server with AUTH_REQUIRED the page is opened as /#token=<sign-in token>: a fragment,
// which the browser never sends to the server. The token is taken out of the address bar at
// once and kept with the tab's state, so that a reload still has it.

// ---- Constants --------------------------------------------------------------------------

const PREFIX = 'relay.tab.';
const TOKEN_KEY = 'session';
const TOKEN = /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/; // what the server issues
const SIGN_IN_KEY = 'signIn';
const SIGN_IN_IN_ADDRESS = /(?:^#|&)token=([^&]+)/;

// ---- State ------------------------------------------------------------------------------

const tab = takeStored(); // name -> raw JSON text: this tab's state while the page lives

// ---- Helpers: sessionStorage ------------------------------------------------------------
// sessionStorage may be unavailable (privacy settings): then nothing outlives the page.

/** Read this tab's values from sessionStorage and take them out of it. */
function takeStored() {
  const values = new Map();
  try {
    for (let index = sessionStorage.length - 1; index >= 0; index -= 1) {
      const key = sessionStorage.key(index);
      if (key?.startsWith(PREFIX)) values.set(key.slice(PREFIX.length), sessionStorage.getItem(key));
    }
    clearStored([...values.keys()]);
  } catch {
    // nothing kept: a new session
  }
  return values;
}

function clearStored(names) {
  try {
    for (const name of names) sessionStorage.removeItem(PREFIX + name);
  } catch {
    // nothing to take out
  }
}

/** The page goes (a reload, a navigation, maybe the back-forward cache): keep it for its return. */
function putBack() {
  try {
    for (const [name, raw] of tab) sessionStorage.setItem(PREFIX + name, raw);
  } catch {
    // not kept: the page still worked, it just forgets on reload
  }
}

// ---- Tab state --------------------------------------------------------------------------

/** The value kept under `name` for this tab (any JSON value), or `fallback`. */
export function readTab(name, fallback = null) {
  const raw = tab.get(name);
  if (raw === undefined || raw === null) return fallback;
  try {
    return JSON.parse(raw);
  } catch {
    return fallback;
  }
}

/** Keep `value` (any JSON value) under `name` for this tab; null forgets it. */
export function writeTab(name, value) {
  if (value === null || value === undefined) {
    tab.delete(name);
  } else {
    tab.set(name, JSON.stringify(value));
  }
}

// ---- The session token ------------------------------------------------------------------

/** This tab's session token, or null before the server has given one. */
export function sessionToken() {
  const token = readTab(TOKEN_KEY);
  return typeof token === 'string' && TOKEN.test(token) ? token : null;
}

/** Keep the token of a connect greeting (a new session's, or ours again). */
export function keepSessionToken(token) {
  if (typeof token === 'string' && TOKEN.test(token) && token !== sessionToken()) {
    writeTab(TOKEN_KEY, token);
  }
}

/**
 * A connect refused as invalid_session (a token the server no longer takes: its SECRET_KEY
 * changed) makes the tab forget its token. Returns whether it did: then connecting again
 * starts a new session.
 */
export function forgetRefusedSession(error) {
  if (error?.data?.code !== 'invalid_session' || readTab(TOKEN_KEY) === null) return false;
  writeTab(TOKEN_KEY, null);
  return true;
}

// ---- The sign-in token (AUTH_REQUIRED) --------------------------------------------------

/** Take a sign-in token out of the address bar (#token=...) into this tab's state. */
function takeSignIn() {
  const found = SIGN_IN_IN_ADDRESS.exec(window.location.hash);
  if (!found) return;
  try {
    writeTab(SIGN_IN_KEY, decodeURIComponent(found[1]));
  } catch {
    // not a token: the server will say that one is needed
  }
  window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search);
}

/** The connect auth that signs this tab in: {token} when it has a sign-in token, else {}. */
export function signInAuth() {
  const token = readTab(SIGN_IN_KEY);
  return typeof token === 'string' && token ? { token } : {};
}

// ---- Wiring -----------------------------------------------------------------------------

takeSignIn();

window.addEventListener('pagehide', putBack);

// Back from the back-forward cache: the page lives on with its state in memory, so take it out
// of sessionStorage again (a tab duplicated now must not copy it).
window.addEventListener('pageshow', (event) => {
  if (event.persisted) clearStored([...tab.keys()]);
});
