"""Results in input order, each once, and the scale history a local Counter would have (no Ray needed)."""

from bcedge.cluster.ordering import InOrder, same_guess
from bcedge.runtime.scale import History


FRAME = (640, 480)


def test_histories_with_the_same_median_and_frame_give_the_same_guess_and_others_do_not():
    assert same_guess(History(), History())
    assert same_guess(History((0.5,), FRAME), History((0.5, 0.5, 0.5), FRAME))
    assert same_guess(History((0.4, 0.5, 0.6), FRAME), History((0.5,), FRAME))
    assert not same_guess(History((0.5,), FRAME), History((0.5, 0.6), FRAME))
    assert not same_guess(History(), History((0.5,), FRAME))   # no history: the thumbnail's guess, not a remembered one
    # an image of one of the two sizes would start from the history in one counter, from its thumbnail in the other
    assert not same_guess(History((0.5,), FRAME), History((0.5,), (416, 416)))


def test_a_counter_remembers_exactly_the_history_given_and_no_more_than_it_keeps():
    from bcedge.runtime.counter import Counter

    counter = Counter.load("default")
    counter.scale_history = History((0.1, 0.2, 0.3, 0.4, 0.5, 0.6), FRAME)
    assert counter.scale_history == History((0.2, 0.3, 0.4, 0.5, 0.6), FRAME)   # the last five
    counter.scale_history = History()
    assert counter.scale_history == History() and not counter.scale_history
    counter.scale_history = (0.4, 0.5)      # bare factors: a history without a frame size
    assert counter.scale_history == History((0.4, 0.5))


def test_outcomes_come_out_in_index_order_once_each():
    order = InOrder()
    order.add(1, "b")
    assert order.peek() is None
    order.add(0, "a")
    order.add(0, "a again")   # a late duplicate: dropped
    assert order.take() == "a"
    order.add(0, "stale")      # already taken: dropped
    assert order.peek() == "b"
    order.drop_next()          # to be counted again
    assert order.peek() is None
    order.add(1, "b2")
    assert [order.take()] == ["b2"] and order.next == 2
