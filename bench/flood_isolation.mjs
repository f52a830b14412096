// Load generator with two roles, run as separate processes so that a busy flood does not delay
// the calm clients' own event loop:
//   calm N: N sockets each post a room message every 200 ms (within the default rate limit)
//           and report their ack latency;
//   flood N: N sockets send my_event as fast as they can, reconnecting whenever dropped.
// Usage: node flood_isolation.mjs URL calm|flood N SECONDS
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const require = createRequire(new URL('../client/package.json', import.meta.url));
const { io } = require('socket.io-client');

const [url, role, count, seconds] = process.argv.slice(2);
const COUNT = Number(count);
const DURATION_MS = Number(seconds) * 1000;
const CALM_PERIOD_MS = 200;

const socketOptions = { transports: ['websocket'], reconnection: false, forceNew: true };
const ackMs = [];
const flood = { sent: 0, refused: 0, dropped: 0 };
let running = true;

function connect() {
  return new Promise((resolve, reject) => {
    const socket = io(`${url}/chat`, socketOptions);
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function calmClient(index) {
  const socket = await connect();
  await socket.timeout(10000).emitWithAck('join', { room: 'calm' });
  for (let n = 0; running; n += 1) {
    const started = performance.now();
    const ack = await socket.timeout(10000).emitWithAck('room_message', { room: 'calm', text: `c${index}-${n}` });
    if (!ack.ok) throw new Error(`calm client refused: ${JSON.stringify(ack)}`);
    ackMs.push(performance.now() - started);
    await pause(Math.max(0, CALM_PERIOD_MS - (performance.now() - started)));
  }
  socket.disconnect();
}

async function flooder() {
  while (running) {
    const socket = await connect();
    socket.on('error', () => { flood.refused += 1; });
    const dropped = new Promise((resolve) => socket.once('disconnect', resolve));
    while (running && socket.connected) {
      for (let n = 0; n < 50; n += 1) socket.emit('my_event', { data: 'flood' });
      flood.sent += 50;
      await pause(1);
    }
    if (running) {
      await dropped;
      flood.dropped += 1;
    }
    socket.disconnect();
  }
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

setTimeout(() => { running = false; }, DURATION_MS);
const fmt = (ms) => ms.toFixed(2);
if (role === 'calm') {
  await Promise.all(Array.from({ length: COUNT }, (_, index) => calmClient(index)));
  console.log(`calm clients=${COUNT} seconds=${seconds}: ${ackMs.length} messages acked`);
  console.log(`calm ack latency ms: p50=${fmt(percentile(ackMs, 50))} p95=${fmt(percentile(ackMs, 95))} p99=${fmt(percentile(ackMs, 99))} max=${fmt(Math.max(...ackMs))}`);
} else {
  await Promise.all(Array.from({ length: COUNT }, flooder));
  console.log(`flooders=${COUNT}: ${flood.sent} events sent, ${flood.refused} refused with rate_limited, ${flood.dropped} disconnects`);
}
process.exit(0);
