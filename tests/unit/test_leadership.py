"""Lease decisions: create when absent, renew our own, wait for a live holder, take expired."""

from datetime import UTC, datetime, timedelta

from analyzer.core.leadership import LeaseMove, LeaseRecord, decide_lease, released

NOW = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
DURATION = timedelta(seconds=15)


def held_by(holder, renewed_seconds_ago):
    renewed = NOW - timedelta(seconds=renewed_seconds_ago)
    return LeaseRecord(holder, DURATION, renewed, renewed, transitions=3, resource_version="7")


def test_absent_lease_is_created_holding_it():
    decision = decide_lease(None, "a", NOW, DURATION)
    assert decision.move is LeaseMove.CREATE and decision.record.holder == "a" and decision.leads


def test_own_lease_is_renewed_keeping_version_and_transitions():
    decision = decide_lease(held_by("a", 5), "a", NOW, DURATION)
    assert decision.move is LeaseMove.RENEW
    assert decision.record.renewed_at == NOW and decision.record.resource_version == "7"
    assert decision.record.transitions == 3


def test_live_lease_of_another_replica_means_wait():
    decision = decide_lease(held_by("b", 14), "a", NOW, DURATION)
    assert decision.move is LeaseMove.WAIT and not decision.leads


def test_expired_lease_is_taken_over_counting_a_transition():
    decision = decide_lease(held_by("b", 15), "a", NOW, DURATION)
    assert decision.move is LeaseMove.TAKE
    assert decision.record.holder == "a" and decision.record.transitions == 4
    assert decision.record.acquired_at == NOW


def test_released_lease_is_taken_at_once():
    decision = decide_lease(released(held_by("b", 1)), "a", NOW, DURATION)
    assert decision.move is LeaseMove.TAKE
