// The benchmark's yardstick: a plain Node socket.io 4.8 server with the events and payload
// shapes our server has for the workloads of bench/compare.py, written as a new user would.
//   /chat:      connect greeting, my_event, join (member lists, room_info), room_message
//               (chat_message with ids +1 per room, kept in memory)
//   /test_conn: ticker_history on connect, server_response {data, seq, ts} every PUSH_INTERVAL
// Usage: PORT=5000 PUSH_INTERVAL=5 node server.mjs   (prints "yardstick serving on http://...")
import { randomBytes, createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT || 5000);
const PUSH_INTERVAL_MS = Number(process.env.PUSH_INTERVAL || 5) * 1000;
const TICKER_HISTORY = Number(process.env.TICKER_HISTORY || 60);

const httpServer = createServer();
const io = new Server(httpServer, {
  pingInterval: 25000,
  pingTimeout: 20000,
  maxHttpBufferSize: 65536,
});

// ---- state
const members = new Map();   // room -> Set of nicks
const lastIds = new Map();   // room -> last message id
const tickerValues = [];     // recent ticker values, oldest first
let tickerSeq = 0;

// ---- helpers
const reply = (ack, body) => { if (typeof ack === 'function') ack(body); };
const refuse = (ack, event, code, message) => reply(ack, { ok: false, error: { code, message }, event });
const isText = (value) => typeof value === 'string' && value.trim() !== '';

function userId(session) {
  return createHash('sha256').update(session).digest('hex').slice(0, 16);
}

function membersOf(room) {
  return [...(members.get(room) || [])].sort();
}

function enter(room, nick) {
  if (!members.has(room)) members.set(room, new Set());
  const set = members.get(room);
  const joined = !set.has(nick);
  set.add(nick);
  return joined;
}

function leaveAll(socket) {
  for (const room of socket.data.rooms) {
    const set = members.get(room);
    set?.delete(socket.data.nick);
    socket.to(room).emit('room_info', {
      kind: 'leave', msg: `Member left: ${room}`, room, nick: socket.data.nick, members: membersOf(room),
    });
  }
}

// ---- /chat
const chat = io.of('/chat');

chat.on('connection', (socket) => {
  const session = randomBytes(16).toString('hex');
  socket.data.nick = `guest-${randomBytes(2).toString('hex')}-${socket.id.slice(0, 6)}`;
  socket.data.userId = userId(session);
  socket.data.rooms = new Set();
  socket.emit('my_response', { data: 'Connected', nick: socket.data.nick, session, user_id: socket.data.userId });

  socket.on('my_event', (payload, ack) => {
    if (!isText(payload?.data)) return refuse(ack, 'my_event', 'empty_message', 'data must not be empty');
    socket.emit('my_response', { data: payload.data });
    return reply(ack, { ok: true });
  });

  socket.on('join', (payload, ack) => {
    if (!isText(payload?.room)) return refuse(ack, 'join', 'invalid_room', 'room must not be empty');
    const room = payload.room.trim();
    const { nick } = socket.data;
    socket.join(room);
    socket.data.rooms.add(room);
    if (enter(room, nick)) {
      chat.to(room).emit('room_info', {
        kind: 'join', msg: `New member joined: ${room}`, room, nick, members: membersOf(room),
      });
    }
    return reply(ack, { ok: true, room, members: membersOf(room), history: [], more: false });
  });

  socket.on('room_message', (payload, ack) => {
    if (!isText(payload?.room)) return refuse(ack, 'room_message', 'invalid_room', 'room must not be empty');
    if (!isText(payload?.text)) return refuse(ack, 'room_message', 'empty_message', 'text must not be empty');
    const room = payload.room.trim();
    if (!socket.data.rooms.has(room)) return refuse(ack, 'room_message', 'not_in_room', 'join the room first');
    const id = (lastIds.get(room) || 0) + 1;
    lastIds.set(room, id);
    chat.to(room).emit('chat_message', {
      id, room, nick: socket.data.nick, user_id: socket.data.userId, text: payload.text, ts: Date.now(),
    });
    return reply(ack, { ok: true, id, room, duplicate: false });
  });

  socket.on('disconnect', () => leaveAll(socket));
});

// ---- /test_conn
const ticker = io.of('/test_conn');

ticker.on('connection', (socket) => {
  socket.emit('ticker_history', { values: tickerValues, interval: PUSH_INTERVAL_MS / 1000 });
});

setInterval(() => {
  tickerSeq += 1;
  const value = { data: 1 + Math.floor(Math.random() * 100), seq: tickerSeq, ts: Date.now() };
  tickerValues.push(value);
  if (tickerValues.length > TICKER_HISTORY) tickerValues.shift();
  ticker.emit('server_response', value);
}, PUSH_INTERVAL_MS);

// ---- start
httpServer.listen(PORT, HOST, () => {
  const { port } = httpServer.address();
  console.log(`yardstick serving on http://${HOST}:${port} (socket.io 4.8, pid ${process.pid})`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
