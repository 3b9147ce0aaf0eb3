"""Workspace settings: GET /v1/settings (read and up), PUT /v1/settings (admin) (API.md, Email
that arrives). The email frequency cap is set here; the time zone is set at deploy and shown."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict

from segmentation.http.auth import ADMINS, READERS, allow
from segmentation.http.models import Shape
from segmentation.http.presenters import documented, respond
from segmentation.messaging import workspace_settings
from segmentation.messaging.workspace_settings import SettingsUpdate

router = APIGatewayRouter()
TAGS = ["Settings"]


class FrequencyCapShape(Shape):
    model_config = ConfigDict(defer_build=True, title="FrequencyCapShape")

    max: int
    days: int


class WorkspaceSettings(Shape):
    email_frequency_cap: FrequencyCapShape | None
    timezone: str


@router.get(
    "/v1/settings",
    tags=TAGS,
    summary="The workspace's settings",
    responses=documented(200, WorkspaceSettings, "The settings"),
)
@allow(*READERS)
def get_settings_route():
    return respond(workspace_settings.current())


@router.put(
    "/v1/settings",
    tags=TAGS,
    summary="Change the email frequency cap",
    description='`email_frequency_cap`: `{"max": 1-100, "days": 1-90}` (at most `max` emails to a user '
    "in any `days` days; more are skipped with reason `frequency_cap`) or null (no cap); left out, it "
    "stays. `timezone` is set at deploy (TimeZone parameter): any other value is a 422. Senders apply a "
    "change within 30 seconds.",
    responses=documented(200, WorkspaceSettings, "The settings after the change", 413),
)
@allow(*ADMINS)
def put_settings(body: SettingsUpdate):
    return respond(workspace_settings.update(body))
