// Load generator: CLIENTS sockets join one room; SENDERS of them post MESSAGES each, one at a
// time (waiting for the ack). Prints the latency from emit to the last member receiving it.
// Usage: node chat_fanout.mjs URL [clients=50] [senders=5] [messages=200]
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const require = createRequire(new URL('../client/package.json', import.meta.url));
const { io } = require('socket.io-client');

const [url, clients = '50', senders = '5', messages = '200'] = process.argv.slice(2);
const CLIENTS = Number(clients);
const SENDERS = Number(senders);
const MESSAGES = Number(messages);
const ROOM = 'bench';

function connect() {
  return new Promise((resolve, reject) => {
    const socket = io(`${url}/chat`, { transports: ['websocket'], reconnection: false, forceNew: true });
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

const sentAt = new Map();      // client_id -> emit time
const deliveries = new Map();  // message key -> receivers so far
const fanoutMs = [];
const ackMs = [];

function onMessage(message) {
  const key = `${message.nick}:${message.text}`;
  const count = (deliveries.get(key) || 0) + 1;
  deliveries.set(key, count);
  if (count === CLIENTS) {
    fanoutMs.push(performance.now() - sentAt.get(key));
    deliveries.delete(key);
  }
}

async function sender(socket, index) {
  const nick = `sender-${index}`;
  await socket.timeout(10000).emitWithAck('set_nick', { nick });
  for (let n = 0; n < MESSAGES; n += 1) {
    const text = `m${n}`;
    const started = performance.now();
    sentAt.set(`${nick}:${text}`, started);
    const ack = await socket.timeout(10000).emitWithAck('room_message', { room: ROOM, text });
    if (!ack.ok) throw new Error(JSON.stringify(ack));
    ackMs.push(performance.now() - started);
  }
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const sockets = await Promise.all(Array.from({ length: CLIENTS }, connect));
for (const socket of sockets) {
  socket.on('chat_message', onMessage);
  await socket.timeout(10000).emitWithAck('join', { room: ROOM });
}
const started = performance.now();
await Promise.all(sockets.slice(0, SENDERS).map(sender));
const deadline = performance.now() + 10000;
while (fanoutMs.length < SENDERS * MESSAGES && performance.now() < deadline) {
  await new Promise((resolve) => setTimeout(resolve, 10));
}
const seconds = (performance.now() - started) / 1000;
const sent = SENDERS * MESSAGES;
const fmt = (ms) => ms.toFixed(2);
console.log(`clients=${CLIENTS} senders=${SENDERS} messages=${sent} complete=${fanoutMs.length}`);
console.log(`throughput: ${(sent / seconds).toFixed(0)} messages/s, ${(sent * CLIENTS / seconds).toFixed(0)} deliveries/s`);
console.log(`ack latency ms: p50=${fmt(percentile(ackMs, 50))} p95=${fmt(percentile(ackMs, 95))} p99=${fmt(percentile(ackMs, 99))}`);
console.log(`fan-out latency ms (emit to last member): p50=${fmt(percentile(fanoutMs, 50))} p95=${fmt(percentile(fanoutMs, 95))} p99=${fmt(percentile(fanoutMs, 99))}`);
sockets.forEach((socket) => socket.disconnect());
process.exit(fanoutMs.length === sent ? 0 : 1);
