"""``http.request`` / ``http.response`` handlers.

API services with the ceilometermiddleware (or any WSGI middleware that
emits the same notifications) report each request as a notification whose
payload carries the WSGI environment under ``request``.
"""

from __future__ import annotations

from collections.abc import Iterator

from telemeter import sample
from telemeter.messaging import envelope
from telemeter.notification import plugin_base


class HTTPRequestBase(plugin_base.NotificationBase):
    """One delta sample of volume 1 per notification.

    The meter name is the event type, the unit its second dotted part;
    user, project and resource come from ``payload.request``'s
    ``HTTP_X_USER_ID``, ``HTTP_X_PROJECT_ID`` and ``HTTP_X_SERVICE_NAME``.
    """

    def process_notification(self, message: envelope.Notification
                             ) -> Iterator[sample.Sample]:
        # The handlers' event_types filter let only these event types in.
        event_type = message['event_type'] or ''
        request = message['payload']['request']
        yield sample.Sample.from_notification(
            name=event_type,
            type=sample.TYPE_DELTA,
            volume=1,
            unit=event_type.split('.')[1],
            user_id=request.get('HTTP_X_USER_ID'),
            project_id=request.get('HTTP_X_PROJECT_ID'),
            resource_id=request.get('HTTP_X_SERVICE_NAME'),
            message=message)


class HTTPRequest(HTTPRequestBase):
    event_types = ['http.request']


class HTTPResponse(HTTPRequestBase):
    event_types = ['http.response']
