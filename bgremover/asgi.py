"""ASGI entry point: HTTP through Django, websockets through Channels, and (the embedded
default, settings.INPROCESS_WORKERS > 0) job workers inside this server process."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bgremover.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import re_path  # noqa: E402

from api.routing import websocket_urlpatterns as api_websocket_urlpatterns  # noqa: E402
from editor import request_limits  # noqa: E402
from editor.routing import websocket_urlpatterns  # noqa: E402
from editor.slow_readers import PacedResponses  # noqa: E402
from editor.websocket_security import SameOriginWebsocketValidator  # noqa: E402
from editor.worker import EmbeddedWorkers  # noqa: E402

# Under Daphne, oversized request bodies are refused while they arrive, not after.
request_limits.install()

application = EmbeddedWorkers(
    ProtocolTypeRouter(
        {
            # A streamed response waits for a client that reads slowly, or not at all.
            "http": PacedResponses(django_asgi_app, stall_s=settings.SLOW_CLIENT_TIMEOUT_S),
            "websocket": URLRouter(
                [
                    # API sockets: authenticated by key, no cookie, so no Origin to check.
                    *api_websocket_urlpatterns,
                    # Browser sockets: Origin exactly this site (scheme, host, port), Host allowed.
                    re_path(
                        r"",
                        SameOriginWebsocketValidator(
                            SessionMiddlewareStack(URLRouter(websocket_urlpatterns))
                        ),
                    ),
                ]
            ),
        }
    )
)
