"""The comment thread, with key images served through the access checks from storage."""

from __future__ import annotations

import pytest

from consult import services
from consult.models import Comment, Consultation, KeyImage
from consult.tests.helpers import bring_to
from imaging import storage
from imaging.models import Instance, Study
from imaging.testing import make_study
from institutions.models import Institution, User
from institutions.testing import client_for

pytestmark = pytest.mark.django_db


def test_requester_and_reader_talk_in_the_thread(consultation: Consultation, doctor: User, reader: User) -> None:
    client_for(doctor).post(f"/consultations/{consultation.uuid}/comments/", {"body": "이전 영상은 없습니다."})
    client_for(reader).post(f"/consultations/{consultation.uuid}/comments/", {"body": "확인했습니다."})
    assert list(Comment.objects.values_list("author__username", "body")) == [
        ("doctor", "이전 영상은 없습니다."),
        ("reader", "확인했습니다."),
    ]
    page = client_for(doctor).get(f"/consultations/{consultation.uuid}/").content.decode()
    assert page.index("이전 영상은 없습니다.") < page.index("확인했습니다.")


def test_an_empty_comment_is_refused(consultation: Consultation, doctor: User) -> None:
    response = client_for(doctor).post(
        f"/consultations/{consultation.uuid}/comments/", {"body": " "}, headers={"accept": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "Write a comment or attach a key image."


def test_a_key_image_shows_the_frames_preview_from_storage(consultation: Consultation, reader: User) -> None:
    instance = Instance.objects.get(study=consultation.study)
    assert instance.preview_status == Instance.PreviewStatus.READY
    response = client_for(reader).post(
        f"/consultations/{consultation.uuid}/comments/", {"body": "여기", "key_image": instance.pk, "frame": 1}
    )
    assert response.status_code == 302
    key_image = KeyImage.objects.get()
    assert (key_image.instance, key_image.frame) == (instance, 0)
    image = client_for(reader).get(f"/consultations/{consultation.uuid}/key-images/{key_image.pk}.jpg")
    assert image.status_code == 200
    assert image["Content-Type"] == "image/jpeg"
    assert image["Cache-Control"] == "no-store, private"
    body = image.content
    with storage.open_file(storage.preview_key(instance.storage_key, 0)) as stored:
        assert body == stored.read()
    assert body.startswith(b"\xff\xd8")


def test_a_frame_that_does_not_exist_is_refused(consultation: Consultation, reader: User) -> None:
    instance = Instance.objects.get(study=consultation.study)
    response = client_for(reader).post(
        f"/consultations/{consultation.uuid}/comments/",
        {"key_image": instance.pk, "frame": 5},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 400
    assert "Frame 5 does not exist" in response.json()["error"]


def test_key_images_of_unattached_studies_are_refused(
    clinic: Institution, consultation: Consultation, doctor: User
) -> None:
    other = make_study(clinic, "MR_small.dcm", actor=doctor)
    with pytest.raises(Exception, match="consultation's studies"):
        services.comment_add(
            consultation=consultation, actor=doctor, body="", key_images=[(Instance.objects.get(study=other), 0)]
        )


def test_the_key_image_goes_dark_for_the_reader_when_the_grant_ends(
    consultation: Consultation, doctor: User, reader: User, settings
) -> None:
    settings.CONSULT_GRANT_GRACE_MINUTES = 0
    instance = Instance.objects.get(study=consultation.study)
    comment = services.comment_add(consultation=consultation, actor=doctor, body="", key_images=[(instance, 0)])
    url = f"/consultations/{consultation.uuid}/key-images/{comment.key_images.get().pk}.jpg"
    assert client_for(reader).get(url).status_code == 200
    bring_to(Consultation.Status.CANCELLED, consultation, doctor, reader)
    # The reader still sees the consultation (its record), but no longer the study's pixels.
    assert client_for(reader).get(f"/consultations/{consultation.uuid}/").status_code == 200
    assert client_for(reader).get(url).status_code == 404
    assert client_for(doctor).get(url).status_code == 200


def test_comments_close_with_the_consultation(consultation: Consultation, doctor: User, reader: User) -> None:
    bring_to(Consultation.Status.DECLINED, consultation, doctor, reader)
    response = client_for(doctor).post(
        f"/consultations/{consultation.uuid}/comments/", {"body": "왜요?"}, headers={"accept": "application/json"}
    )
    assert response.status_code == 409
    assert response.json()["allowed"] == []
    assert isinstance(consultation.study, Study)
