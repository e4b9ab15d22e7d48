"""The one retry loop (handler.im.retry) on a clock the test moves: every attempt is given only the time left, and
one that cannot fit is not started."""

from __future__ import annotations

import math

import pytest

from handler.apps import App, AppConfig
from handler.im import client, codes, retry
from handler.im.codes import Origin
from handler.im.ratelimit import NoSlot
from handler.im.usersig import Identity

IDENTITY = Identity(1400000001, "administrator", "test-key-not-secret")
CONNECT_TIMEOUT = 3.05  # what a black-holed endpoint costs an attempt that has that much time


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Pacer:
    """A send slot at ``slot_at`` (at once by default): NoSlot when that is past the caller's deadline."""

    def __init__(self, slot_at: float = 0.0) -> None:
        self.asked: list[float] = []
        self.slot_at = slot_at

    def acquire(self, deadline: float = math.inf, ahead: float = math.inf) -> float:
        self.asked.append(deadline)
        if self.slot_at > deadline:
            raise NoSlot("next send slot is past the deadline")
        return self.slot_at

    def back_off(self, seconds: float) -> None:
        pass


class Identities:
    def __init__(self) -> None:
        self.forced = 0

    def get(self, force: bool = False) -> Identity:
        self.forced += force
        return IDENTITY


class BlackHole:
    """An endpoint where every connect waits for its timeout: the attempt takes all it is given, up to 3.05 s."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.given: list[float] = []

    def __call__(self, base: str, creds: client.Credentials, left: float) -> client.ImResult:
        self.given.append(round(left, 6))
        self.clock.now += min(left, CONNECT_TIMEOUT)
        return client.ImResult(codes.TIMED_OUT, "ConnectTimeout", Origin.TRANSPORT)


@pytest.fixture(autouse=True)
def no_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "BACKOFF_BASE", 0.2)
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: high)  # the longest back-off


def call(identities: Identities | None = None, pacer: Pacer | None = None) -> retry.Call:
    app = App(AppConfig(IDENTITY, "http://im.invalid"), identities or Identities(), pacer or Pacer())
    return retry.Call(app, IDENTITY, app.limiter)


@pytest.mark.parametrize("seconds", [1.0, 3.0, 3.6, 4.0, 6.4, 9.9, 30.0])
def test_every_attempt_ends_by_the_deadline_whatever_its_length(seconds: float) -> None:
    clock = Clock()
    hole = BlackHole(clock)
    deadline = clock.now + seconds
    result = retry.Retry(max_attempts=10, clock=clock, sleep=clock.sleep).run(call(), hole, deadline)
    # Each attempt was given exactly the time left, none less than MIN_ATTEMPT, and the last ended by the deadline
    assert clock.now <= deadline
    assert all(left >= retry.MIN_ATTEMPT for left in hole.given)
    assert hole.given[0] == seconds
    assert result.code == codes.TIMED_OUT and result.origin is Origin.TRANSPORT  # the endpoint's own answer


def test_the_time_given_is_what_is_left_after_the_first_attempt_and_the_back_off() -> None:
    clock = Clock()
    hole = BlackHole(clock)
    retry.Retry(max_attempts=4, clock=clock, sleep=clock.sleep).run(call(), hole, clock.now + 4.0)
    # 4.0, then 4.0 - 3.05 - 0.2 (the back-off): the second attempt fits, and is cut to what is left
    assert hole.given == [4.0, 0.75]


def test_an_attempt_that_cannot_fit_is_not_started() -> None:
    clock = Clock()
    hole = BlackHole(clock)
    pacer = Pacer()
    result = retry.Retry(max_attempts=4, clock=clock, sleep=clock.sleep).run(
        call(pacer=pacer), hole, clock.now + retry.MIN_ATTEMPT - 0.01)
    assert hole.given == [] and pacer.asked == []  # not even a send slot of the budget is taken
    assert (result.code, result.origin, result.info) == (codes.TIMED_OUT, Origin.LOCAL, retry.NO_TIME)


def test_no_second_attempt_when_the_back_off_leaves_too_little() -> None:
    clock = Clock()
    hole = BlackHole(clock)
    # 3.05 for the first attempt, 0.2 back-off: 0.45 would be left, less than MIN_ATTEMPT
    deadline = clock.now + 3.7
    result = retry.Retry(max_attempts=4, clock=clock, sleep=clock.sleep).run(call(), hole, deadline)
    assert hole.given == [3.7] and clock.now == pytest.approx(deadline - 3.7 + CONNECT_TIMEOUT)  # no back-off slept
    assert result.origin is Origin.TRANSPORT  # the last real answer, not "no time"


def test_a_send_slot_too_late_for_an_attempt_is_60007_not_sent() -> None:
    clock = Clock()
    hole = BlackHole(clock)
    pacer = Pacer(slot_at=math.inf)  # no slot before any deadline
    deadline = clock.now + 5
    result = retry.Retry(max_attempts=4, clock=clock, sleep=clock.sleep).run(call(pacer=pacer), hole, deadline)
    assert hole.given == [] and pacer.asked == [deadline - retry.MIN_ATTEMPT]  # a slot that leaves room to send
    assert (result.code, result.origin) == (codes.RATE_LIMITED, Origin.LOCAL)


def test_an_auth_answer_gets_one_fresh_signature_and_one_more_attempt() -> None:
    clock = Clock()
    identities = Identities()
    answers = [client.ImResult(70001, "expired", Origin.REMOTE), client.ImResult(70001, "expired", Origin.REMOTE)]
    sent: list[float] = []

    def send(base: str, creds: client.Credentials, left: float) -> client.ImResult:
        sent.append(left)
        return answers.pop(0)

    one = call(identities)
    result = retry.Retry(max_attempts=1, clock=clock, sleep=clock.sleep).run(one, send, clock.now + 10)
    assert len(sent) == 2 and identities.forced == 1 and one.refreshed
    assert result.code == 70001


def test_the_client_caps_connect_read_and_both_together_by_the_time_left() -> None:
    short = client.timeouts(0.8)
    assert (short.connect_timeout, short.total) == (0.8, 0.8)
    roomy = client.timeouts(30.0, read=5.0)
    assert (roomy.connect_timeout, roomy.total) == (client.CONNECT_TIMEOUT, 30.0)
    roomy.start_connect()
    assert roomy.read_timeout == 5.0  # within the total, the read keeps its own cap
