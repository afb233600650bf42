"""All websocket routes, gathered from the apps that own them."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from clinicnet.events import EventsConsumer
from coreading.routing import websocket_urlpatterns as coreading_urlpatterns

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/events/", EventsConsumer.as_asgi()),
    *coreading_urlpatterns,
]
