"""Group commit: concurrent callers share batches, and each gets its own answer."""
import threading
import time

import pytest

from server.chat.batching import Batcher


def test_callers_that_arrive_together_share_a_batch_and_get_their_own_results():
    batches = []
    first_running = threading.Event()
    release = threading.Event()

    def run_batch(batch):
        batches.append([args[0] for args in batch])
        if len(batches) == 1:
            first_running.set()
            release.wait(5)  # the first batch is slow: the rest queue up behind it
        return [f'r{number}' for (number,) in batch]

    batcher = Batcher(run_batch)
    results = {}

    def call(number):
        results[number] = batcher.submit(number)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert first_running.wait(5)
    others = [threading.Thread(target=call, args=(n,)) for n in range(1, 11)]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 5
    while len(batcher._waiting) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in [first, *others]:
        thread.join(5)
    assert results == {n: f'r{n}' for n in range(11)}
    assert batches[0] == [0] and sorted(batches[1]) == list(range(1, 11)) and len(batches) == 2


def test_an_outcome_that_is_an_error_goes_to_its_caller_alone():
    batcher = Batcher(lambda batch: [ValueError(args[0]) if args[0] == 'bad' else args[0]
                                     for args in batch])
    assert batcher.submit('good') == 'good'
    with pytest.raises(ValueError, match='bad'):
        batcher.submit('bad')


def test_a_failing_batch_fails_each_of_its_callers_and_the_next_batch_runs():
    calls = []

    def run_batch(batch):
        calls.append(batch)
        if len(calls) == 1:
            raise OSError('disk full')
        return [args[0] for args in batch]

    batcher = Batcher(run_batch)
    with pytest.raises(OSError):
        batcher.submit('lost')
    assert batcher.submit('kept') == 'kept'
