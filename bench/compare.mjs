// Load generator of bench/compare.py: one workload against one server, the same code for ours and
// for the Node yardstick, with the official socket.io-client. Prints one JSON line of results.
// A workload that needs the runner to look at the server meanwhile (the connect workload reads
// its memory) prints {"checkpoint": name} and waits for a line on stdin before going on.
// Usage: node compare.mjs URL echo|fanout|connect|ticker|join|history '{"clients": 20, ...}'
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

const require = createRequire(new URL('../client/package.json', import.meta.url));
const { io } = require('socket.io-client');

const [url, workload, optionsJson = '{}'] = process.argv.slice(2);
const options = JSON.parse(optionsJson);
const CONCURRENCY = options.concurrency ?? 50;  // connection attempts in flight while connecting
// Local addresses the clients take turns sending from (bench/cluster.py spreads them over the
// workers behind nginx's ip_hash this way); none: the system picks.
const SOURCES = options.sources ?? [];
const ACK_TIMEOUT_MS = 10000;
const ROOM = 'bench';

// ---- helpers
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (value, digits = 2) => (value === undefined ? null : Number(value.toFixed(digits)));
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function percentile(values, p) {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function connect(namespace, setup = () => {}, index = 0) {
  return new Promise((resolve, reject) => {
    const localAddress = SOURCES.length ? SOURCES[index % SOURCES.length] : undefined;
    const socket = io(`${url}${namespace}`, {
      transports: ['websocket'], reconnection: false, forceNew: true, localAddress,
    });
    setup(socket);
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

async function connectAll(count, namespace, setup) {
  const sockets = [];
  let next = 0;
  async function opener() {
    while (next < count) {
      const index = next;
      next += 1;
      sockets[index] = await connect(namespace, (socket) => setup?.(socket, index), index);
    }
  }
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, count) }, opener));
  return sockets;
}

async function ack(socket, event, payload) {
  const answer = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
  if (!answer.ok) throw new Error(`${event} refused: ${JSON.stringify(answer)}`);
  return answer;
}

async function checkpoint(name) {
  console.log(JSON.stringify({ checkpoint: name }));
  await stdinLines.next();
}

async function waitUntil(done, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!done() && performance.now() < deadline) await pause(5);
}

// ---- workloads: each returns its figures
async function echo({ clients = 20, seconds = 3, warmup = 1 }) {
  const sockets = await connectAll(clients, '/chat');
  const rttMs = [];
  const measureFrom = performance.now() + warmup * 1000;
  const stopAt = measureFrom + seconds * 1000;
  async function loop(socket) {
    while (performance.now() < stopAt) {
      const started = performance.now();
      await ack(socket, 'my_event', { data: 'echo' });
      if (started >= measureFrom) rttMs.push(performance.now() - started);
    }
  }
  await Promise.all(sockets.map(loop));
  sockets.forEach((socket) => socket.disconnect());
  return {
    clients, seconds, msgs_per_s: round(rttMs.length / seconds, 0),
    rtt_p50_ms: round(percentile(rttMs, 50)), rtt_p99_ms: round(percentile(rttMs, 99)),
  };
}

async function fanout({ members = 100, senders = 5, inflight = 2, seconds = 3, warmup = 1 }) {
  const sentAt = new Map();     // text -> emit time
  const receivers = new Map();  // text -> members that got it
  const latencyMs = [];
  const tally = { deliveries: 0, measured: 0, reordered: 0, acked: 0, last: 0, examples: [] };
  let measureFrom = Infinity;  // rate and latency count the messages sent after the warm-up
  function listen(socket) {
    let lastId = 0;
    socket.on('chat_message', (message) => {
      const now = performance.now();
      const emitted = sentAt.get(message.text);
      tally.deliveries += 1;
      if (message.id <= lastId) {
        tally.reordered += 1;
        if (tally.examples.length < 5) tally.examples.push([lastId, message.id]);
      }
      lastId = Math.max(lastId, message.id);
      receivers.set(message.text, (receivers.get(message.text) || 0) + 1);
      if (emitted >= measureFrom) {
        tally.measured += 1;
        tally.last = now;
        latencyMs.push(now - emitted);
      }
    });
  }
  const sockets = await connectAll(members, '/chat', listen);
  await Promise.all(sockets.map((socket) => ack(socket, 'join', { room: ROOM })));
  await pause(200);  // the join announcements settle
  measureFrom = performance.now() + warmup * 1000;
  const stopAt = measureFrom + seconds * 1000;
  async function loop(socket, name) {
    for (let n = 0; performance.now() < stopAt; n += 1) {
      const text = `${name}.${n}`;
      sentAt.set(text, performance.now());
      await ack(socket, 'room_message', { room: ROOM, text });
      tally.acked += 1;
    }
  }
  const loops = sockets.slice(0, senders).flatMap((socket, index) => (
    Array.from({ length: inflight }, (_, lane) => loop(socket, `s${index}l${lane}`))));
  await Promise.all(loops);
  await waitUntil(() => tally.deliveries >= tally.acked * members, 10000);
  const elapsed = (tally.last - measureFrom) / 1000;
  let lost = 0;
  for (const text of sentAt.keys()) lost += members - Math.min(members, receivers.get(text) || 0);
  sockets.forEach((socket) => socket.disconnect());
  return {
    members, senders, inflight, seconds, acked: tally.acked, deliveries: tally.deliveries,
    deliveries_per_s: round(tally.measured / elapsed, 0),
    latency_p50_ms: round(percentile(latencyMs, 50)), latency_p99_ms: round(percentile(latencyMs, 99)),
    lost, reordered: tally.reordered, reordered_examples: tally.examples,
  };
}

async function connectMany({ clients = 500 }) {
  const warm = await connect('/chat');  // the server's first connection pays for lazy set-up
  await checkpoint('before');
  const started = performance.now();
  const sockets = await connectAll(clients, '/chat');
  const connectSeconds = (performance.now() - started) / 1000;
  await pause(500);  // greetings delivered, buffers settled
  await checkpoint('after');
  [warm, ...sockets].forEach((socket) => socket.disconnect());
  return { clients, connect_s: round(connectSeconds, 3) };
}

async function ticker({ clients = 200, ticks = 10, interval = 0.5 }) {
  const arrivals = new Map();  // seq -> receive times
  let newest = 0;
  function listen(socket) {
    socket.on('server_response', ({ seq }) => {
      if (!arrivals.has(seq)) arrivals.set(seq, []);
      arrivals.get(seq).push(performance.now());
      newest = Math.max(newest, seq);
    });
  }
  const sockets = await connectAll(clients, '/test_conn', listen);
  const before = newest;
  await waitUntil(() => newest > before, (interval + 5) * 1000);
  const first = newest + 1;
  const last = first + ticks - 1;
  await waitUntil(() => (arrivals.get(last) || []).length >= clients, (ticks + 5) * interval * 1000);
  await pause(interval * 500);  // stragglers of the last tick
  const spreadMs = [];
  let lostTicks = 0;
  for (let seq = first; seq <= last; seq += 1) {
    const times = arrivals.get(seq) || [];
    lostTicks += clients - Math.min(clients, times.length);
    if (times.length) spreadMs.push(Math.max(...times) - Math.min(...times));
  }
  sockets.forEach((socket) => socket.disconnect());
  return {
    clients, ticks, interval, spread_p50_ms: round(percentile(spreadMs, 50)),
    spread_max_ms: round(Math.max(...spreadMs)), lost_ticks: lostTicks,
  };
}

async function joinStorm({ clients = 200 }) {
  // Under concurrent joins a server may announce a join to more members than had joined before
  // it, so the count of room_info varies; what must hold is that every member at last sees
  // the full member list.
  const tally = { infos: 0, complete: 0, last: 0 };
  function listen(socket) {
    let complete = false;
    socket.on('room_info', ({ members }) => {
      tally.infos += 1;
      if (!complete && members.length >= clients) {
        complete = true;
        tally.complete += 1;
        tally.last = performance.now();
      }
    });
  }
  const sockets = await connectAll(clients, '/chat', listen);
  const started = performance.now();
  await Promise.all(sockets.map((socket) => ack(socket, 'join', { room: ROOM })));
  const ackedSeconds = (performance.now() - started) / 1000;
  await waitUntil(() => tally.complete >= clients, 30000);
  sockets.forEach((socket) => socket.disconnect());
  return {
    clients, acked_s: round(ackedSeconds, 3), room_info: tally.infos,
    settled_s: round((tally.last - started) / 1000, 3), never_saw_all_members: clients - tally.complete,
  };
}

async function durableHistory({ senders = 50, rooms = 10, seconds = 5, warmup = 1 }) {
  // Closed-loop senders into a few rooms, each ack meaning the message is stored, while a quiet
  // client's echo every 20 ms shows whether the store holds up everyone else.
  const sockets = await connectAll(senders, '/chat');
  const quiet = await connect('/chat');
  const roomOf = (index) => `${ROOM}-${index % rooms}`;
  await Promise.all(sockets.map((socket, index) => ack(socket, 'join', { room: roomOf(index) })));
  const measureFrom = performance.now() + warmup * 1000;
  const stopAt = measureFrom + seconds * 1000;
  let acked = 0;
  const echoMs = [];
  async function send(socket, index) {
    for (let n = 0; performance.now() < stopAt; n += 1) {
      const started = performance.now();
      await ack(socket, 'room_message', { room: roomOf(index), text: `m${index}.${n}` });
      if (started >= measureFrom) acked += 1;
    }
  }
  async function probe() {
    while (performance.now() < stopAt) {
      const started = performance.now();
      await ack(quiet, 'my_event', { data: 'quiet' });
      if (started >= measureFrom) echoMs.push(performance.now() - started);
      await pause(20);
    }
  }
  await Promise.all([...sockets.map(send), probe()]);
  [quiet, ...sockets].forEach((socket) => socket.disconnect());
  return {
    senders, rooms, seconds, acks_per_s: round(acked / seconds, 0),
    quiet_echo_p50_ms: round(percentile(echoMs, 50)), quiet_echo_p99_ms: round(percentile(echoMs, 99)),
  };
}

// ---- main
const WORKLOADS = {
  echo, fanout, connect: connectMany, ticker, join: joinStorm, history: durableHistory,
};
const cpuStart = process.cpuUsage();
const wallStart = performance.now();
const result = await WORKLOADS[workload](options);
const cpu = process.cpuUsage(cpuStart);
// How busy the load generator itself was: near 1.0 means it, not the server, may be the limit.
result.generator_cpu = round((cpu.user + cpu.system) / 1000 / (performance.now() - wallStart));
console.log(JSON.stringify(result));
process.exit(0);
