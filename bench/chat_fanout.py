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

    workdir = Path(tempfile.mkdtemp(prefix='bench-'))
    server = LiveServer(workdir / 'server.log', prefix=['taskset', '-c', '0'], LOG_LEVEL='WARNING',
                        RATE_LIMIT_PER_SECOND='1000000', RATE_LIMIT_BURST='1000000',
                        MAX_ROOM_MEMBERS='100000')
    try:
        server.start()
        load = subprocess.run(
            ['taskset', '-c', '1', 'node', str(HERE / 'chat_fanout.mjs'), server.url,
             str(args.clients), str(args.senders), str(args.messages)],
            capture_output=True, text=True, timeout=600)
        print(load.stdout, end='')
        if load.returncode != 0:
            print(load.stderr)
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
