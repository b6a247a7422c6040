"""Websocket routes of the API app, authenticated by API key (api.consumers): no cookies, so
the ASGI entry point routes them before the browser sockets' same-origin check."""

from django.urls import path

from api.consumers import ApiJobProgressConsumer

websocket_urlpatterns = [
    path("ws/api/jobs/<uuid:job_id>/", ApiJobProgressConsumer.as_asgi()),
]
