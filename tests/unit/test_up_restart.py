"""The restart policy of `keyledger up`: backoff, its reset, and when it gives up."""

import signal

from keyledger.local.restart import MAX_DELAY, Restarts, exit_status


def test_backoff_doubles_from_half_a_second_up_to_the_cap() -> None:
    history = Restarts(started_at=0.0)
    delays = []
    for n in range(9):
        now = n * 20.0  # 3 deaths a minute at most: never gives up, never stable
        assert history.died(1, now=now)
        delays.append(history.delay())
        history.restarted(now=now + 1)
    assert delays == [0.5, 1, 2, 4, 8, 16, MAX_DELAY, MAX_DELAY, MAX_DELAY]
    assert history.restarts == 9


def test_a_process_that_stayed_up_a_while_starts_the_backoff_over() -> None:
    history = Restarts(started_at=0.0)
    assert history.died(1, now=1.0)
    history.restarted(now=2.0)
    assert history.died(1, now=3.0)
    assert history.delay() == 1
    history.restarted(now=4.0)
    assert history.died(1, now=40.0)  # up 36 s
    assert history.delay() == 0.5


def test_five_deaths_within_a_minute_give_up() -> None:
    history = Restarts(started_at=0.0)
    for now in (1.0, 2.0, 4.0, 8.0):
        assert history.died(-signal.SIGKILL, now=now)
        assert history.is_due(now=now + 30)
        history.restarted(now=now + 0.5)
    assert not history.died(1, now=16.0)
    assert history.due is None  # no restart pending
    assert history.last_exit == "exited with code 1"


def test_deaths_older_than_a_minute_do_not_count() -> None:
    history = Restarts(started_at=0.0)
    for now in (0.0, 20.0, 40.0, 60.0, 80.0, 100.0):
        assert history.died(1, now=now)
        history.restarted(now=now + 1)


def test_a_restart_waits_for_its_delay() -> None:
    history = Restarts(started_at=0.0)
    history.died(1, now=10.0)
    assert not history.is_due(now=10.4)
    assert history.is_due(now=10.5)


def test_exit_status_reads_like_a_sentence() -> None:
    assert exit_status(-9) == "killed by SIGKILL"
    assert exit_status(-15) == "killed by SIGTERM"
    assert exit_status(3) == "exited with code 3"
    assert exit_status(0) == "exited with code 0"
