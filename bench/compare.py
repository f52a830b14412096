"""Benchmark: our server side by side with a Node socket.io 4.8 server with the same events.

    .venv/bin/python -m bench.compare [--workloads echo,fanout,connect,ticker,join,history] [...]

For each workload, our ``run.py`` (rate limits lifted, a throw-away SQLite database) and then the
Node yardstick (``bench/node``, ``npm ci`` there first) run pinned to core 0, one after the
other, never both at once, and the same Node load generator (``bench/compare.mjs``, the official
socket.io-client) drives each from core 1. Each workload runs ``--repeat`` rounds (the servers
taking turns, so that a busy machine weighs on both alike), prints one JSON line per server and
round, and a Markdown table row of each server's median round with the ratio ours/Node; the
whole table comes at the end. Exits 1 if a check failed (a lost or reordered delivery, a lost
tick, a member never shown the full room).
"""
import argparse
import contextlib
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.yardstick import Yardstick
from tests.support.live_server import LiveServer

log = logging.getLogger('bench.compare')

HERE = Path(__file__).resolve().parent
GENERATOR = HERE / 'compare.mjs'
SERVERS = ('ours', 'node')
LOAD_TIMEOUT = 600  # seconds one workload against one server may take, whatever its size
OUR_LIMITS_LIFTED = {'RATE_LIMIT_PER_SECOND': '1000000', 'RATE_LIMIT_BURST': '1000000',
                     'MAX_ROOM_MEMBERS': '1000000'}


@dataclass(frozen=True)
class Workload:
    """How one workload is labelled, which figure heads its row, which must be zero."""

    name: str
    label: str              # formatted with the workload's options
    measure: str
    key: str
    unit: str
    also: tuple = ()        # (title, key, unit) shown with their own ratio
    must_be_zero: tuple = ()


WORKLOADS = (
    Workload('echo', 'echo, {clients} clients closed-loop on `my_event`, {seconds:g} s',
             'msgs/s (higher is better)', 'msgs_per_s', '/s',
             also=(('RTT p50', 'rtt_p50_ms', 'ms'), ('RTT p99', 'rtt_p99_ms', 'ms'))),
    Workload('fanout', 'fan-out, {members} members in one room, {senders} senders x {inflight} '
             'in flight, {seconds:g} s',
             'deliveries/s (higher is better)', 'deliveries_per_s', '/s',
             also=(('latency p50', 'latency_p50_ms', 'ms'), ('p99', 'latency_p99_ms', 'ms'),
                   ('lost', 'lost', ''), ('reordered', 'reordered', '')),
             must_be_zero=('lost', 'reordered')),
    Workload('connect', 'connect {clients} clients to `/chat`',
             'server RSS per connection (lower is better)', 'rss_per_connection_kib', 'KiB',
             also=(('all connected in', 'connect_s', 's'),
                   ('stopped with all of them (SIGTERM) in', 'stop_s', 's'))),
    Workload('ticker',
             'ticker, {clients} clients on `/test_conn`, {ticks} ticks every {interval:g} s',
             'spread first to last receiver, p50 (lower is better)', 'spread_p50_ms', 'ms',
             also=(('max', 'spread_max_ms', 'ms'), ('lost ticks', 'lost_ticks', '')),
             must_be_zero=('lost_ticks',)),
    Workload('join', 'join storm, {clients} clients into one room',
             'seconds until every join is acked (lower is better)', 'acked_s', 's',
             also=(('every member saw all members', 'settled_s', 's'),
                   ('`room_info` sent', 'room_info', ''),
                   ('members who never did', 'never_saw_all_members', '')),
             must_be_zero=('never_saw_all_members',)),
    Workload('history', 'durable history, {senders} senders closed-loop into {rooms} rooms, '
             '{seconds:g} s (Node keeps nothing)',
             'acknowledged room messages/s (higher is better)', 'acks_per_s', '/s',
             also=(('a quiet client\'s echo p50', 'quiet_echo_p50_ms', 'ms'),
                   ('p99', 'quiet_echo_p99_ms', 'ms'))),
)

TABLE_HEADER = ('| workload | measure | ours | Node socket.io 4.8 | ours/Node '
                '| also: ours vs Node |\n|---|---|---|---|---|---|')


def main():
    """Run the chosen workloads against both servers; print JSON lines and the table."""
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    args = parse_args()
    raise_file_limit()
    chosen = [w for w in WORKLOADS if w.name in args.workloads.split(',')]
    rows, failures = [], []
    workdir = Path(tempfile.mkdtemp(prefix='bench-compare-'))
    try:
        for workload in chosen:
            options = workload_options(args, workload.name)
            row, failed = compare(workload, options, workdir, args.repeat)
            rows.append(row)
            failures.extend(failed)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report(machine_description(), TABLE_HEADER, rows, failures)


def report(machine, header, rows, failures):
    """Print the machine, the table and every failed check; return the exit code."""
    print(f'\n{machine}\n\n{header}')
    print('\n'.join(rows))
    for problem in failures:
        log.error('check failed: %s', problem)
    return 1 if failures else 0


def parse_args():
    """Read the workload selection and sizes; defaults finish the whole run in a few minutes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--workloads', default=','.join(w.name for w in WORKLOADS),
                        help='comma-separated, from: %(default)s')
    parser.add_argument('--repeat', type=int, default=3,
                        help='rounds of each workload, the servers taking turns; the table '
                             'shows each server\'s median run')
    parser.add_argument('--echo-clients', type=int, default=50)
    parser.add_argument('--echo-seconds', type=float, default=5)
    parser.add_argument('--fanout-members', type=int, default=200)
    parser.add_argument('--fanout-senders', type=int, default=5)
    parser.add_argument('--fanout-inflight', type=int, default=2,
                        help='messages each sender keeps in flight')
    parser.add_argument('--fanout-seconds', type=float, default=5)
    parser.add_argument('--connect-clients', type=int, default=1000)
    parser.add_argument('--ticker-clients', type=int, default=500)
    parser.add_argument('--ticker-ticks', type=int, default=20)
    parser.add_argument('--ticker-interval', type=float, default=0.25,
                        help='PUSH_INTERVAL given to both servers')
    parser.add_argument('--join-clients', type=int, default=300)
    parser.add_argument('--history-senders', type=int, default=50)
    parser.add_argument('--history-rooms', type=int, default=10)
    parser.add_argument('--history-seconds', type=float, default=5)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error('--repeat must be at least 1')
    return args


def workload_options(args, name):
    """Return the ``--<name>-*`` arguments as the load generator's options."""
    prefix = f'{name}_'
    return {key[len(prefix):]: value for key, value in vars(args).items()
            if key.startswith(prefix)}


def compare(workload, options, workdir, repeat=1):
    """Run one workload against each server in turn, ``repeat`` rounds; print its JSON lines
    and table row, which shows each server's run with the median headline figure."""
    runs = {server: [] for server in SERVERS}
    for round_ in range(repeat):
        for server in SERVERS:
            log.info('%s against %s: %s', workload.name, server, options)
            folder = workdir / f'{workload.name}-{round_}'  # a fresh database every round
            runs[server].append(measure(server, workload.name, options, folder))
            print(json.dumps({'workload': workload.name, 'server': server, **runs[server][-1]}),
                  flush=True)
    results = {server: median_run(found, workload.key) for server, found in runs.items()}
    row = table_row(workload, options, results)
    print(row, flush=True)
    return row, problems(workload, runs)


def median_run(runs, key):
    """Return the run whose ``key`` is the median (the lower one of an even count)."""
    ordered = sorted(runs, key=lambda run: run[key] if run[key] is not None else float('inf'))
    return ordered[(len(ordered) - 1) // 2]


def measure(server, name, options, folder):
    """Start one server, drive it with the load generator, stop it; return the figures."""
    stop = {}
    with started(server, options, folder, stop) as (url, pid):
        result = run_load(url, pid, name, options)
    if name == 'connect':
        grown = result['rss_after_kib'] - result['rss_before_kib']
        result['rss_per_connection_kib'] = round(grown / options['clients'], 1)
        result['stop_s'] = stop['seconds']  # every client still connected
    return result


@contextlib.contextmanager
def started(server, options, folder, stop=None):
    """Yield ``(url, pid)`` of a fresh server pinned to core 0; stop it afterwards, putting
    the seconds SIGTERM took in ``stop['seconds']``."""
    interval = options.get('interval', 5)
    if server == 'ours':
        process = LiveServer(folder / 'server.log', prefix=pinned(0), LOG_LEVEL='ERROR',
                             DATABASE_URL=f'sqlite:///{folder / "chat.db"}',
                             PUSH_INTERVAL=interval, **OUR_LIMITS_LIFTED)
    else:
        process = Yardstick(prefix=pinned(0), PUSH_INTERVAL=interval)
    process.start()
    try:
        yield process.url, process.process.pid
    finally:
        asked = time.monotonic()
        try:
            process.stop(timeout=60)
        finally:
            process.kill()
        if stop is not None:
            stop['seconds'] = round(time.monotonic() - asked, 2)


def run_load(url, pid, name, options):
    """Run the load generator on core 1 and return its JSON result.

    At each checkpoint it announces, the server's resident memory is read and the generator
    told to go on; the readings come back as ``rss_<checkpoint>_kib``.
    """
    command = [*pinned(1), 'node', str(GENERATOR), url, name, json.dumps(options)]
    generator = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
    watchdog = threading.Timer(LOAD_TIMEOUT, generator.kill)
    watchdog.start()
    readings, result = {}, None
    try:
        for line in generator.stdout:
            message = json.loads(line)
            if 'checkpoint' in message:
                readings[f'rss_{message["checkpoint"]}_kib'] = rss_kib(pid)
                generator.stdin.write('\n')
                generator.stdin.flush()
            else:
                result = message
        generator.wait()
    finally:
        watchdog.cancel()
        if generator.poll() is None:
            generator.kill()
            generator.wait()
    if generator.returncode != 0 or result is None:
        raise RuntimeError(f'load generator failed ({name}, exit {generator.returncode})')
    return {**result, **readings}


def pinned(core):
    """Return the ``taskset`` prefix that pins a command to ``core`` (none on one core)."""
    return ['taskset', '-c', str(core)] if len(os.sched_getaffinity(0)) >= 2 else []


def rss_kib(pid):
    """Return a process's resident memory (VmRSS) in KiB."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1])
    raise RuntimeError(f'no VmRSS for process {pid}')


def raise_file_limit():
    """Let this process and its children open as many sockets as the hard limit allows."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def table_row(workload, options, results):
    """Return the workload's Markdown row: its headline figure, then the others."""
    ours, node = results['ours'], results['node']
    also = '; '.join(versus(title, ours[key], node[key], unit)
                     for title, key, unit in workload.also)
    return (f'| {workload.label.format(**options)} | {workload.measure} '
            f'| {formatted(ours[workload.key], workload.unit)} '
            f'| {formatted(node[workload.key], workload.unit)} '
            f'| {ratio(ours[workload.key], node[workload.key])} | {also} |')


def versus(title, ours, node, unit):
    """Return "title ours vs node (ratio)"; counts, which should be 0, get no ratio."""
    if not unit:
        return f'{title} {ours} vs {node}'
    return f'{title} {formatted(ours, unit)} vs {formatted(node, unit)} ({ratio(ours, node)})'


def formatted(value, unit):
    """Return a figure with its unit, rates in thousands."""
    if value is None:
        return 'n/a'
    if unit == '/s':
        return f'{value / 1000:.1f}k' if value >= 1000 else f'{value:.0f}'
    if unit == 's':
        return f'{value:.2f} s'
    return f'{value:.1f} {unit}' if unit else str(value)


def ratio(ours, node):
    """Return ours/Node as "0.30x" (a dash when Node's figure is zero or missing)."""
    if not ours or not node:
        return '–'
    return f'{ours / node:.2f}x'


def problems(workload, runs):
    """Return the checks any run of this workload failed, one sentence each."""
    return [f'{workload.name}: {server} {key} = {run[key]}'
            for server, found in runs.items() for run in found
            for key in workload.must_be_zero if run[key]]


def machine_description():
    """Return the machine line printed above the table: cores, CPU model, load."""
    model = next((line.split(':', 1)[1].strip()
                  for line in Path('/proc/cpuinfo').read_text().splitlines()
                  if line.startswith('model name')), 'unknown CPU')
    load = ', '.join(f'{value:.2f}' for value in os.getloadavg())
    pinning = 'both servers pinned to core 0, load generator to core 1'
    if not pinned(0):
        pinning = 'one core: nothing pinned'
    return (f'Machine: {len(os.sched_getaffinity(0))} cores (nproc), {model}; {pinning}; '
            f'load average at the end {load}.')


if __name__ == '__main__':
    sys.exit(main())
