"""Benchmark: one process against workers on Redis behind nginx, the way ``make cluster`` runs.

    .venv/bin/python -m bench.cluster [--workers 1,2] [--workloads fanout,echo] [sizes...]

Setups, each driven by the same load generator as ``bench.compare`` (``bench/compare.mjs``, the
official socket.io-client, WebSocket):

- ``one process``: ``run.py`` alone, no Redis, no nginx (``make run``);
- ``N workers``: ``python -m deploy.cluster --workers N`` (its own redis-server, N workers
  sharing one SQLite file, nginx in front; ``make cluster``). The clients send from loopback
  addresses that nginx's ``ip_hash`` spreads evenly over the workers.

Nothing is pinned: the setups differ in how many cores they can use, and on a small machine
the load generator competes with them for the cores, which the printed ``generator_cpu`` shows.
Prints one JSON line per setup and round, then a Markdown table of each setup's median round
with its ratio to one process. Exits 1 if a lost or reordered delivery was seen.
"""
import argparse
import contextlib
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from bench.compare import (OUR_LIMITS_LIFTED, formatted, machine_description, median_run,
                           raise_file_limit, ratio, report, run_load, workload_options)
from tests.support.cluster import ClusterProcess
from tests.support.live_server import LiveServer

log = logging.getLogger('bench.cluster')

SOURCES_PER_WORKER = 4
WORKLOADS = {
    # name: (headline key, unit, checks that must be 0)
    'fanout': ('deliveries_per_s', '/s', ('lost', 'reordered')),
    'echo': ('msgs_per_s', '/s', ()),
}
TABLE_HEADER = ('| workload | setup | headline | vs one process | also | generator CPU |\n'
                '|---|---|---|---|---|---|')


def main():
    """Run the chosen workloads on each setup; print JSON lines and the table."""
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    args = parse_args()
    raise_file_limit()
    setups = [0, *args.workers]  # 0: one process without Redis or nginx
    rows, failures = [], []
    workdir = Path(tempfile.mkdtemp(prefix='bench-cluster-'))
    try:
        for name in args.workloads.split(','):
            options = workload_options(args, name)
            results = {}
            for workers in setups:
                runs = [measure(workers, name, options, workdir / f'{name}-{workers}-{n}')
                        for n in range(args.repeat)]
                failures += [f'{name} on {label(workers)}: {key} = {run[key]}'
                             for run in runs for key in WORKLOADS[name][2] if run[key]]
                results[workers] = median_run(runs, WORKLOADS[name][0])
            rows += table_rows(name, options, results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report(machine_description_unpinned(), TABLE_HEADER, rows, failures)


def parse_args():
    """Read the setups, the workloads and their sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--workers', default='1,2',
                        help='worker counts to run behind nginx, besides one plain process')
    parser.add_argument('--workloads', default='fanout,echo', help='from: fanout,echo')
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--fanout-members', type=int, default=200)
    parser.add_argument('--fanout-senders', type=int, default=5)
    parser.add_argument('--fanout-inflight', type=int, default=2)
    parser.add_argument('--fanout-seconds', type=float, default=5)
    parser.add_argument('--echo-clients', type=int, default=50)
    parser.add_argument('--echo-seconds', type=float, default=5)
    args = parser.parse_args()
    args.workers = [int(count) for count in args.workers.split(',') if count]
    unknown = set(args.workloads.split(',')) - set(WORKLOADS)
    if unknown or args.repeat < 1 or any(count < 1 for count in args.workers):
        parser.error(f'unknown workloads {sorted(unknown)}, or a count below 1')
    return args


def label(workers):
    return 'one process' if workers == 0 else f'{workers} worker{"s" * (workers > 1)} on Redis'


def measure(workers, name, options, folder):
    """Start the setup, drive it, stop it; return the generator's figures."""
    log.info('%s on %s: %s', name, label(workers), options)
    with started(workers, folder) as (url, sources):
        result = run_load(url, None, name, {**options, 'sources': sources})
    result.pop('sources', None)
    print(json.dumps({'workload': name, 'setup': label(workers), **result}), flush=True)
    return result


@contextlib.contextmanager
def started(workers, folder):
    """Yield ``(url, client source addresses)`` of a fresh setup; stop it afterwards."""
    folder.mkdir(parents=True)
    env = {'LOG_LEVEL': 'ERROR', **OUR_LIMITS_LIFTED}
    if workers == 0:
        server = LiveServer(folder / 'server.log', DATABASE_URL=f'sqlite:///{folder / "chat.db"}',
                            **env).start()
        try:
            yield server.url, []
        finally:
            server.stop()
            server.kill()
        return
    cluster = ClusterProcess(folder, workers=workers, **env).start()
    try:
        by_worker = cluster.sources_by_worker(per_worker=SOURCES_PER_WORKER)
        # Interleaved, so that consecutive clients, and the senders among the first, go to
        # different workers.
        yield cluster.url, [source for group in zip(*by_worker.values()) for source in group]
    finally:
        cluster.stop()


def table_rows(name, options, results):
    """One Markdown row per setup: its headline figure and ratio to one process."""
    key, unit, _ = WORKLOADS[name]
    base = results[0][key]
    workload = (f'fan-out, {options["members"]} members, {options["senders"]} senders x '
                f'{options["inflight"]} in flight' if name == 'fanout'
                else f'echo, {options["clients"]} clients closed-loop')
    rows = []
    for workers, run in results.items():
        if name == 'fanout':
            also = (f'latency p50 {run["latency_p50_ms"]} ms, p99 {run["latency_p99_ms"]} ms; '
                    f'lost {run["lost"]}, reordered {run["reordered"]}')
        else:
            also = f'RTT p50 {run["rtt_p50_ms"]} ms, p99 {run["rtt_p99_ms"]} ms'
        rows.append(f'| {workload} | {label(workers)} | {formatted(run[key], unit)} '
                    f'{"deliveries" if name == "fanout" else "msgs"}/s | '
                    f'{ratio(run[key], base)} | {also} | {run["generator_cpu"]} |')
    return rows


def machine_description_unpinned():
    """The machine line, saying that nothing was pinned here."""
    return machine_description().split(';')[0] + '; nothing pinned (servers, nginx, Redis and ' \
        'the load generator share the cores).'


if __name__ == '__main__':
    sys.exit(main())
