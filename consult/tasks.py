"""Background work of consultations: thin wrappers around ``consult.notify``."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.utils import translation

from consult.models import Notification

logger = logging.getLogger(__name__)


@shared_task(name="consult.send_notification_emails", acks_late=True)
def send_notification_emails(notification_ids: list[int]) -> None:
    """E-mail each notification to its recipient, in their language (one SMTP connection)."""
    from consult.notify import email_message

    notifications = Notification.objects.filter(pk__in=notification_ids).select_related(
        "user",
        "actor",
        "consultation__study",
        "consultation__requesting_institution",
        "consultation__target_institution",
    )
    messages = []
    for notification in notifications:
        user = notification.user
        if not user.email or not user.is_active:
            continue
        with translation.override(user.language or settings.LANGUAGE_CODE):
            subject, body = email_message(notification)
        messages.append(EmailMessage(subject=subject, body=body, to=[user.email]))
    if messages:
        with get_connection() as connection:
            connection.send_messages(messages)
