"""Results in input order, each once, and the scale history a local Counter would have (no Ray needed)."""

from bcedge.cluster.ordering import InOrder, same_guess


def test_histories_with_the_same_median_give_the_same_guess_and_others_do_not():
    assert same_guess((), ())
    assert same_guess((0.5,), (0.5, 0.5, 0.5))
    assert same_guess((0.4, 0.5, 0.6), (0.5,))
    assert not same_guess((0.5,), (0.5, 0.6))
    assert not same_guess((), (0.5,))   # no history: the model's typical scale, not a remembered one


def test_a_counter_remembers_exactly_the_history_given_and_no_more_than_it_keeps():
    from bcedge.runtime.counter import Counter

    counter = Counter.load("default")
    counter.scale_history = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    assert counter.scale_history == (0.2, 0.3, 0.4, 0.5, 0.6)   # the last five
    counter.scale_history = ()
    assert counter.scale_history == ()


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
