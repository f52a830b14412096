"""Benchmark: chat fan-out through the real run.py, server and load generator on separate cores.

    .venv/bin/python -m bench.chat_fanout [--clients 50] [--senders 5] [--messages 200]

The server (core 0) and the Node load generator (core 1) are pinned with taskset; the server's
rate limit is lifted for the run and its database is a throw-away file. Prints the figures.
"""
import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support.live_server import LiveServer

HERE = Path(__file__).resolve().parent


def main():
    """Run one benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--clients', type=int, default=50)
    parser.add_argument('--senders', type=int, default=5)
    parser.add_argument('--messages', type=int, default=200)
    args = parser.parse_args()
    run_benchmark([('chat_fanout.mjs', [args.clients, args.senders, args.messages])],
                  RATE_LIMIT_PER_SECOND='1000000', RATE_LIMIT_BURST='1000000',
                  MAX_ROOM_MEMBERS='100000')


def run_benchmark(loads, nice=(), **server_env):
    """Start run.py pinned to core 0 and the Node load scripts together on core 1; print all.

    ``loads`` lists ``(script, args)``; a load whose index is in ``nice`` runs at the lowest
    priority, so that it cannot starve the others of core 1.
    """
    workdir = Path(tempfile.mkdtemp(prefix='bench-'))
    server = LiveServer(workdir / 'server.log', prefix=['taskset', '-c', '0'],
                        LOG_LEVEL='ERROR', **server_env)
    try:
        server.start()
        processes = [
            subprocess.Popen(
                [*(['nice', '-n', '19'] if index in nice else []), 'taskset', '-c', '1',
                 'node', str(HERE / script), server.url, *map(str, args)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for index, (script, args) in enumerate(loads)]
        for process in processes:
            output, _ = process.communicate(timeout=600)
            print(output, end='')
        print(f'server peak RSS: {peak_rss_kib(server.process.pid) / 1024:.1f} MiB')
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def peak_rss_kib(pid):
    """Return a process's peak resident memory (VmHWM) in KiB."""
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmHWM:'):
            return int(line.split()[1])
    raise RuntimeError(f'no VmHWM for process {pid}')


if __name__ == '__main__':
    main()
