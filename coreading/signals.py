"""Reacting to consultations without consult knowing about co-reading.

consult moves a consultation's status with a conditional UPDATE (no
``post_save`` of Consultation), but every move creates one
ConsultationTransition row: that is the hook. When a consultation ends
(closed, declined, cancelled) its room closes after the transaction commits,
and everyone in it is disconnected.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from consult.models import Consultation, ConsultationTransition

ENDED = (Consultation.Status.CLOSED, Consultation.Status.DECLINED, Consultation.Status.CANCELLED)


@receiver(post_save, sender=ConsultationTransition, dispatch_uid="coreading.consultation_ended")
def consultation_transition_saved(sender: Any, instance: ConsultationTransition, created: bool, **kwargs: Any) -> None:
    if not created or instance.to_status not in ENDED:
        return
    from coreading.services import consultation_ended

    consultation_id = instance.consultation_id
    transaction.on_commit(lambda: consultation_ended(Consultation.objects.get(pk=consultation_id)))
