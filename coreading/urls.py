from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from coreading import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/coreading/studies/<str:study_uid>/rooms/", views.study_rooms, name="coreading-study-rooms"),
    path(
        "api/coreading/consultations/<str:consultation_uuid>/room/",
        views.consultation_room,
        name="coreading-consultation-room",
    ),
    path("api/coreading/rooms/<str:room_id>/", views.room_detail, name="coreading-room"),
    path("api/coreading/rooms/<str:room_id>/participants/", views.room_invite, name="coreading-room-invite"),
    path(
        "api/coreading/rooms/<str:room_id>/participants/<int:user_id>/",
        views.room_remove,
        name="coreading-room-remove",
    ),
    path("api/coreading/rooms/<str:room_id>/close/", views.room_close, name="coreading-room-close"),
    path("coreading/rooms/<str:room_id>/", views.room_open, name="coreading-room-open"),
    path(
        "coreading/consultations/<str:consultation_uuid>/room/",
        views.consultation_room_open,
        name="coreading-consultation-room-open",
    ),
]
