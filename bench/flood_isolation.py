"""Benchmark: does a flood from some clients slow the others down?

    .venv/bin/python -m bench.flood_isolation [--calm 10] [--flooders 20] [--seconds 10]

Runs the same calm load twice against the real run.py with its default rate limits, once
alone and once beside the flooders (a separate Node process at the lowest priority), server on
core 0 and the Node load on core 1, and prints the calm clients' acknowledgement latency.
"""
import argparse

from bench.chat_fanout import run_benchmark


def main():
    """Run the calm load without and with flooders; print both results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--calm', type=int, default=10)
    parser.add_argument('--flooders', type=int, default=20)
    parser.add_argument('--seconds', type=int, default=10)
    args = parser.parse_args()
    calm = ('flood_isolation.mjs', ['calm', args.calm, args.seconds])
    flood = ('flood_isolation.mjs', ['flood', args.flooders, args.seconds])
    print('-- calm clients alone')
    run_benchmark([calm])
    print(f'-- calm clients beside {args.flooders} flooders (flooders at nice 19)')
    run_benchmark([calm, flood], nice={1})


if __name__ == '__main__':
    main()
