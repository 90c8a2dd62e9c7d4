"""Lease decisions: create when absent, renew our own, wait for a live holder, take expired.

Expiry is judged as client-go's leader election does (tools/leaderelection/
leaderelection.go, tryAcquireOrRenew, isLeaseValid): from this replica's own observation
of the last change to the record, never from the holder's renewTime (another node's clock).
"""

from datetime import UTC, datetime, timedelta

from analyzer.core.leadership import LeaseMove, LeaseRecord, decide_lease, observe, released

NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
DURATION = timedelta(seconds=15)


def held_by(holder, renewed_seconds_ago):
    renewed = NOW - timedelta(seconds=renewed_seconds_ago)
    return LeaseRecord(holder, DURATION, renewed, renewed, transitions=3, resource_version="7")


def seconds(n):
    return NOW + timedelta(seconds=n)


def test_absent_lease_is_created_holding_it():
    decision = decide_lease(None, "a", NOW, DURATION, None)
    assert decision.move is LeaseMove.CREATE and decision.record.holder == "a" and decision.leads
    assert decision.observation.at == NOW


def test_own_lease_is_renewed_keeping_version_and_transitions():
    decision = decide_lease(held_by("a", 5), "a", NOW, DURATION, None)
    assert decision.move is LeaseMove.RENEW
    assert decision.record.renewed_at == NOW and decision.record.resource_version == "7"
    assert decision.record.transitions == 3
    assert decision.observation.content == decision.record.content()


def test_a_lease_first_seen_is_live_for_one_duration_whatever_its_renew_time():
    # the holder's clock says it renewed an hour ago: we have only just seen it, so it is live
    stale_looking = held_by("b", 3600)
    first = decide_lease(stale_looking, "a", NOW, DURATION, None)
    assert first.move is LeaseMove.WAIT and not first.leads
    assert first.observation.at == NOW
    still = decide_lease(stale_looking, "a", seconds(14), DURATION, first.observation)
    assert still.move is LeaseMove.WAIT and still.observation == first.observation
    taken = decide_lease(stale_looking, "a", seconds(15), DURATION, still.observation)
    assert taken.move is LeaseMove.TAKE
    assert taken.record.holder == "a" and taken.record.transitions == 4
    assert taken.record.acquired_at == seconds(15)


def test_a_renew_time_in_the_future_does_not_keep_a_dead_holder():
    # the holder's clock runs an hour ahead and it stopped renewing: one duration and it is ours
    ahead = held_by("b", -3600)
    seen = decide_lease(ahead, "a", NOW, DURATION, None).observation
    assert decide_lease(ahead, "a", seconds(15), DURATION, seen).move is LeaseMove.TAKE


def test_every_change_of_the_record_restarts_the_observation():
    first = decide_lease(held_by("b", 0), "a", NOW, DURATION, None).observation
    renewed = LeaseRecord("b", DURATION, NOW, seconds(10), 3, "8")
    later = decide_lease(renewed, "a", seconds(14), DURATION, first)
    assert later.move is LeaseMove.WAIT and later.observation.at == seconds(14)
    assert decide_lease(renewed, "a", seconds(28), DURATION, later.observation).move is (
        LeaseMove.WAIT)
    assert decide_lease(renewed, "a", seconds(29), DURATION, later.observation).move is (
        LeaseMove.TAKE)
    # a new resourceVersion alone (a label change) is not a renewal
    assert observe(later.observation, LeaseRecord("b", DURATION, NOW, seconds(10), 3, "9"),
                   seconds(20)) == later.observation


def test_released_lease_is_taken_at_once():
    decision = decide_lease(released(held_by("b", 1)), "a", NOW, DURATION, None)
    assert decision.move is LeaseMove.TAKE
