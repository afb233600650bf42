from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from coreading.consumers import RoomConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/coreading/<str:room>/", RoomConsumer.as_asgi()),
]
