"""ASGI entry point: HTTP through Django, websockets through Channels.

Websockets authenticate with the session cookie (never a token in the URL,
which would end up in access logs) and are checked against ALLOWED_HOSTS.
Each app adds its routes to ``websocket_urlpatterns`` in its routing module.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinicnet.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application does before its handler

from imaging.dicomweb.asgi import ClinicNetASGIHandler  # noqa: E402  (needs Django set up first)

# Django's ASGI handler, answering DICOMweb reads in one thread hop (imaging/dicomweb/asgi.py).
django_asgi_app = ClinicNetASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from clinicnet.lib.startup import freeze_start_up_objects  # noqa: E402
from clinicnet.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)


# Everything is loaded: keep the collector's full passes off it (clinicnet/lib/startup.py).
freeze_start_up_objects()
