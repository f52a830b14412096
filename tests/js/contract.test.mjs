// The event contract, checked with the official socket.io-client against a live server.
// Run by tests/js/test_js_client.py with SERVER_URL set; each transport gets the whole suite.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../client/package.json', import.meta.url));
const { io } = require('socket.io-client');

const SERVER_URL = process.env.SERVER_URL;
const WAIT_MS = 5000;

function connect(namespace, transport) {
  const socket = io(SERVER_URL + namespace, {
    transports: [transport], reconnection: false, forceNew: true, timeout: WAIT_MS,
  });
  socket.received = [];
  socket.onAny((event, payload) => socket.received.push({ event, payload }));
  return socket;
}

function nextEvent(socket, event, where = () => true) {
  return new Promise((resolve, reject) => {
    const already = socket.received.find((r) => r.event === event && where(r.payload));
    if (already) { resolve(already.payload); return; }
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${WAIT_MS} ms`)), WAIT_MS);
    const listener = (payload) => {
      if (!where(payload)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(payload);
    };
    socket.on(event, listener);
  });
}

function ask(socket, event, ...args) {
  return socket.timeout(WAIT_MS).emitWithAck(event, ...args);
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

for (const transport of ['websocket', 'polling']) {
  describe(`over ${transport}`, () => {
    const sockets = [];
    const open = (namespace) => { const s = connect(namespace, transport); sockets.push(s); return s; };
    after(() => sockets.forEach((s) => s.disconnect()));

    test('connect greets each client with Connected and a nick', async () => {
      const ana = open('/chat');
      const greeting = await nextEvent(ana, 'my_response');
      assert.equal(greeting.data, 'Connected');
      assert.match(greeting.nick, /^guest-/);
    });

    test('my_event echoes to the sender only', async () => {
      const ana = open('/chat');
      const bob = open('/chat');
      await nextEvent(ana, 'my_response');
      await nextEvent(bob, 'my_response');
      assert.deepEqual(await ask(ana, 'my_event', { data: 'echo me' }), { ok: true });
      assert.deepEqual(await nextEvent(ana, 'my_response', (r) => r.data === 'echo me'), { data: 'echo me' });
      await ask(bob, 'my_event', { data: 'marker' });
      await nextEvent(bob, 'my_response', (r) => r.data === 'marker');
      assert.ok(!bob.received.some((r) => r.payload && r.payload.data === 'echo me'));
    });

    test('room members chat; leaving tells the rest; outsiders hear nothing', async () => {
      const room = `room-${transport}`;
      const ana = open('/chat');
      const bob = open('/chat');
      const outsider = open('/chat');
      const anaNick = (await nextEvent(ana, 'my_response')).nick;
      const bobNick = (await nextEvent(bob, 'my_response')).nick;
      await nextEvent(outsider, 'my_response');

      const first = await ask(ana, 'join', { room });
      assert.deepEqual(first,
        { ok: true, room, members: [anaNick], owner: anaNick, history: [], more: false });
      const second = await ask(bob, 'join', { room });
      assert.deepEqual([...second.members].sort(), [anaNick, bobNick].sort());
      const joined = await nextEvent(ana, 'room_info', (i) => i.nick === bobNick);
      assert.equal(joined.msg, `New member joined: ${room}`);

      const sent = await ask(ana, 'room_message', { room, text: '<i>hi</i>' });
      assert.equal(sent.ok, true);
      const toBob = await nextEvent(bob, 'chat_message');
      const toAna = await nextEvent(ana, 'chat_message');
      assert.deepEqual(toBob, toAna);
      assert.equal(toBob.id, sent.id);
      assert.equal(toBob.nick, anaNick);
      assert.equal(toBob.text, '<i>hi</i>');
      assert.equal(typeof toBob.ts, 'number');

      assert.deepEqual(await ask(bob, 'leave', { room }), { ok: true, room });
      const left = await nextEvent(ana, 'room_info', (i) => i.msg === `Member left: ${room}`);
      assert.deepEqual(left.members, [anaNick]);
      await ask(ana, 'room_message', { room, text: 'bob is gone' });
      await nextEvent(ana, 'chat_message', (m) => m.text === 'bob is gone');
      await tick();
      assert.equal(bob.received.filter((r) => r.event === 'chat_message').length, 1);
      assert.ok(!outsider.received.some((r) => r.event === 'chat_message' || r.event === 'room_info'));
    });

    test('bad input is refused in the ack, or with an error event when no ack is asked', async () => {
      const ana = open('/chat');
      await nextEvent(ana, 'my_response');
      const tooLong = await ask(ana, 'join', { room: 'r'.repeat(65) });
      assert.equal(tooLong.ok, false);
      assert.equal(tooLong.error.code, 'invalid_room');
      assert.equal((await ask(ana, 'room_message', 'text only')).error.code, 'bad_request');
      assert.equal((await ask(ana, 'room_message', { room: 'nowhere', text: 'x' })).error.code, 'not_in_room');
      ana.emit('join', { room: 42 });
      const error = await nextEvent(ana, 'error');
      assert.equal(error.event, 'join');
      assert.equal(error.error.code, 'bad_request');
      assert.ok(ana.connected);
    });

    test('the ticker sends history, then shared values; pause holds them', async () => {
      const viewer = open('/test_conn');
      const history = await nextEvent(viewer, 'ticker_history');
      assert.ok(Array.isArray(history.values) && history.values.length <= 60);
      const first = await nextEvent(viewer, 'server_response');
      const second = await nextEvent(viewer, 'server_response', (v) => v.seq > first.seq);
      assert.equal(second.seq, first.seq + 1);
      for (const value of [first, second]) {
        assert.ok(Number.isInteger(value.data) && value.data >= 1 && value.data <= 100);
      }
      assert.deepEqual(await ask(viewer, 'ticker_pause'), { ok: true, paused: true });
      assert.deepEqual(await ask(viewer, 'ticker_resume'), { ok: true, paused: false });
      await nextEvent(viewer, 'server_response', (v) => v.seq > second.seq);
    });

    test('an unknown namespace is refused', async () => {
      // python-socketio refuses with a bare string, so the client's error carries no message.
      const stranger = open('/nope');
      const error = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no connect_error')), WAIT_MS);
        stranger.on('connect_error', (err) => { clearTimeout(timer); resolve(err); });
      });
      assert.ok(error instanceof Error);
      assert.equal(stranger.connected, false);
      assert.ok(!stranger.received.length);
    });

    test('a session token the server did not sign is refused as invalid_session', async () => {
      const invented = `${'a'.repeat(43)}.${'b'.repeat(43)}`;
      const impostor = io(SERVER_URL + '/chat', {
        transports: [transport], reconnection: false, forceNew: true, timeout: WAIT_MS,
        auth: { nick: 'Ana', session: invented },
      });
      sockets.push(impostor);
      const error = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no connect_error')), WAIT_MS);
        impostor.on('connect_error', (err) => { clearTimeout(timer); resolve(err); });
      });
      assert.equal(error.data.code, 'invalid_session');
      assert.equal(error.message, error.data.message);
      assert.match(error.message, /SECRET_KEY/);
      assert.equal(impostor.connected, false);
      assert.equal(impostor.active, false); // refused: the client does not retry by itself
    });
  });
}
