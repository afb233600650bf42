"""Factories for tests of every app: institutions, people and their roles."""

from __future__ import annotations

import itertools
from typing import Any

from django.test import Client

from institutions.models import Institution, Membership, Role, User

_codes = itertools.count(10_000_001)
_names = itertools.count(1)
TEST_PASSWORD = "correct horse battery"  # noqa: S105  (test-only)


def make_institution(
    *,
    kind: str = Institution.Kind.CLINIC,
    health_center: Institution | None = None,
    name_ko: str = "",
    **fields: object,
) -> Institution:
    code = str(next(_codes))
    if kind != Institution.Kind.HEALTH_CENTER and health_center is None:
        health_center = make_institution(kind=Institution.Kind.HEALTH_CENTER)
    institution = Institution(
        code=code,
        name_ko=name_ko or f"테스트기관 {code}",
        name_en=f"Test institution {code}",
        kind=kind,
        health_center=health_center,
        accepts_consultations=kind == Institution.Kind.HEALTH_CENTER,
        **fields,
    )
    institution.full_clean()
    institution.save()
    return institution


def make_user(*, username: str = "", name: str = "", **fields: object) -> User:
    """A user; English UI unless ``language="ko"`` is given, so tests can match messages."""
    fields.setdefault("language", "en")
    number = next(_names)
    username = username or f"user{number}"
    user = User(username=username, name=name or f"사용자{number}", email=f"{username}@example.org", **fields)
    user.set_password(TEST_PASSWORD)
    user.save()
    return user


def make_member(institution: Institution, role: str = Role.PHYSICIAN, **user_fields: Any) -> User:
    user = make_user(**user_fields)
    Membership.objects.create(user=user, institution=institution, role=role)
    return user


def client_for(user: User) -> Client:
    """A test client signed in as *user* (through the real login signal)."""
    client = Client()
    client.force_login(user, backend="institutions.backends.EmailOrUsernameBackend")
    return client


def sign_in(client: Client, login: str, password: str) -> bool:
    """Sign in through the real login form (and so through the lockout checks)."""
    response = client.post("/accounts/login/", {"username": login, "password": password})
    return response.status_code == 302


def anonymous_client(language: str = "en") -> Client:
    """A client that is not signed in, asking for *language* like a browser would."""
    return Client(headers={"accept-language": language})
