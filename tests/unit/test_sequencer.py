"""The sequencer that puts room messages from several workers back in id order."""
import random

from server.sequencer import Sequencer


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def started(numbers=(1,), hold=0.25, **kwargs):
    """A sequencer on a fake clock that has already handed on ``numbers`` in room ``r``."""
    clock = Clock()
    sequencer = Sequencer(hold, clock=clock, **kwargs)
    for number in numbers:
        sequencer.offer('r', number, number)
    clock.now += hold
    sequencer.due()
    return sequencer, clock


def test_the_first_item_of_a_room_waits_the_hold_for_an_earlier_one_then_all_go_in_order():
    clock = Clock()
    sequencer = Sequencer(0.25, clock=clock)
    assert sequencer.offer('r', 8, 'eight') == []
    assert sequencer.offer('r', 7, 'seven') == []
    assert abs(sequencer.next_due_in() - 0.25) < 1e-9
    clock.now += 0.125
    assert sequencer.due() == [] and sequencer.holding
    clock.now += 0.125
    assert sequencer.due() == ['seven', 'eight']
    assert not sequencer.holding and sequencer.next_due_in() is None
    assert sequencer.offer('r', 9, 'nine') == ['nine']  # in turn: at once


def test_an_early_item_waits_for_the_gap_and_goes_the_moment_it_fills():
    sequencer, _ = started([1])
    assert sequencer.offer('r', 3, 3) == []
    assert sequencer.offer('r', 4, 4) == []
    assert sequencer.offer('r', 2, 2) == [2, 3, 4]
    assert not sequencer.holding
    assert sequencer.offer('r', 5, 5) == [5]


def test_a_gap_that_never_fills_is_given_up_after_the_hold_and_a_late_item_still_goes():
    sequencer, clock = started([1])
    assert sequencer.offer('r', 3, 3) == []
    clock.now += 0.125
    assert sequencer.due() == []
    clock.now += 0.125
    assert sequencer.due() == [3]
    assert sequencer.offer('r', 4, 4) == [4]
    assert sequencer.offer('r', 2, 2) == [2]  # too late to be put in place; not lost either
    assert sequencer.offer('r', 4, 'again') == ['again']


def test_rooms_are_independent():
    sequencer, _ = started([1])
    sequencer.offer('other', 1, 'o1')
    assert sequencer.offer('r', 3, 3) == []
    assert sequencer.offer('r', 2, 2) == [2, 3]


def test_shuffled_arrivals_within_the_hold_come_out_in_order():
    sequencer, clock = started([0])
    numbers = list(range(1, 501))
    random.Random(5).shuffle(numbers)
    out = []
    for number in numbers:
        out += sequencer.offer('r', number, number)
    clock.now += 0.25
    out += sequencer.due()
    assert out == list(range(1, 501))


def test_it_remembers_a_bounded_number_of_rooms_but_never_one_it_holds_items_of():
    sequencer, clock = started([1], max_keys=2)
    sequencer.offer('a', 1, 'a1')
    clock.now += 0.25
    sequencer.due()
    sequencer.offer('b', 1, 'b1')
    clock.now += 0.125
    assert sequencer.offer('r', 3, 3) == []  # held, and 'r' is now the least recent room
    assert sequencer.offer('a', 2, 'a2') == ['a2']
    clock.now += 0.125
    assert sequencer.due() == ['b1']  # a third room remembered: one must go, not 'r'
    assert sequencer.offer('r', 2, 2) == [2, 3]
    sequencer.offer('c', 1, 'c1')
    clock.now += 0.25
    sequencer.due()  # a fourth: 'a', now the least recent, is forgotten
    assert sequencer.offer('a', 3, 'a3') == []  # so its next item waits as a first one would


def test_a_room_seen_for_the_first_time_waits_its_own_shorter_hold():
    clock = Clock()
    sequencer = Sequencer(1.0, first_hold=0.25, clock=clock)
    assert sequencer.offer('r', 5, 5) == []
    clock.now += 0.25
    assert sequencer.due() == [5]
    assert sequencer.offer('r', 7, 7) == []
    clock.now += 0.5
    assert sequencer.due() == []  # a gap in a known room waits the whole hold
    clock.now += 0.5
    assert sequencer.due() == [7]


def test_giving_up_on_one_gap_does_not_give_up_on_the_next():
    clock = Clock()
    sequencer = Sequencer(1.0, first_hold=0.25, clock=clock)
    for number in (5, 6, 8):
        assert sequencer.offer('r', number, number) == []
    clock.now += 0.25
    assert sequencer.due() == [5, 6]  # first seen: nothing before 5 is waited for any longer
    clock.now += 0.5
    assert sequencer.offer('r', 7, 7) == [7, 8]  # 7 came within the hold: in order
    assert sequencer.offer('r', 10, 10) == []
    assert sequencer.offer('r', 12, 12) == []
    clock.now += 1.0
    assert sequencer.due() == [10]
    assert sequencer.offer('r', 11, 11) == [11, 12]
