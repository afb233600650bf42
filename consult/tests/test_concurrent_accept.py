"""Two readers accepting the same request at once: exactly one wins, the other is told who did."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from consult import services
from consult.models import Consultation, ConsultationTransition
from institutions.models import User

Status = Consultation.Status


@pytest.mark.django_db
def test_a_reader_holding_a_stale_copy_cannot_accept_after_another(
    consultation: Consultation, reader: User, second_reader: User
) -> None:
    mine = Consultation.objects.get(pk=consultation.pk)
    theirs = Consultation.objects.get(pk=consultation.pk)
    services.consultation_accept(consultation=theirs, actor=second_reader)
    with pytest.raises(services.TransitionConflict) as raised:
        services.consultation_accept(consultation=mine, actor=reader)
    assert raised.value.status == Status.ACCEPTED
    assert "Someone else changed this consultation first" in raised.value.message
    consultation.refresh_from_db()
    assert consultation.accepted_by == second_reader
    assert ConsultationTransition.objects.filter(consultation=consultation, to_status=Status.ACCEPTED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_readers_accepting_at_the_same_moment_on_two_connections(
    consultation: Consultation, reader: User, second_reader: User
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL): SQLite lets only one writer in at a time anyway")
    barrier = threading.Barrier(2, timeout=10)
    outcome: dict[str, str] = {}

    def accept(user: User) -> None:
        try:
            # Each thread has its own database connection and its own copy of the row.
            copy = Consultation.objects.get(pk=consultation.pk)
            barrier.wait()
            services.consultation_accept(consultation=copy, actor=user)
            outcome[user.username] = "won"
        except services.TransitionConflict as conflict:
            outcome[user.username] = f"conflict:{conflict.status}"
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(user,)) for user in (reader, second_reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcome.values()) == ["conflict:accepted", "won"]
    winner = next(name for name, result in outcome.items() if result == "won")
    consultation.refresh_from_db()
    assert consultation.accepted_by.username == winner
    assert consultation.version == 2
    assert ConsultationTransition.objects.filter(consultation=consultation, to_status=Status.ACCEPTED).count() == 1
