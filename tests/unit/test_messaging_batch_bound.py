"""Where the RabbitMQ batch listener closes a batch of received messages
(``batch_size`` and ``batch_bytes``)."""

from telemeter.messaging.rabbit import batch_end


def test_without_a_byte_bound_every_message_counts():
    assert batch_end([10_000] * 7, 0) == 7
    assert batch_end([], 0) == 0


def test_the_message_that_reaches_the_bound_closes_the_batch():
    assert batch_end([400, 400, 400, 400], 1000) == 3
    assert batch_end([500, 500, 500], 1000) == 2


def test_small_messages_stay_in_one_batch():
    assert batch_end([100] * 50, 1_048_576) == 50


def test_a_message_larger_than_the_bound_goes_alone():
    assert batch_end([5_000_000, 10, 10], 1_048_576) == 1
