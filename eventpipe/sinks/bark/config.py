"""Config of the `bark:` receiver: bark-server's push fields."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from eventpipe.sinks.im.config import ImSinkConfig
from eventpipe.sinks.urls import check_url


class BarkSinkConfig(ImSinkConfig):
    """Bark iOS push (finab/bark-server): POST <serverURL>/push."""

    template: str = Field(default="", alias="body",
                          description="Go template of the push body (`template` is accepted "
                          "too); default: the eventpipe message.")
    server_url: str = Field(default="https://api.day.app", alias="serverURL",
                            description="bark-server base URL (self-hosted or the public "
                            "one).")
    device_key: str = Field(min_length=1, alias="deviceKey", repr=False,
                            description="The device key of the Bark app. Never logged.")
    title: str = Field(default="", description="Go template of the push title; default "
                       "\"<type> <reason>: <namespace>/<kind>/<name>\".")
    group: str = Field(default="", description="Group the pushes under this name.")
    level: Literal["", "active", "timeSensitive", "passive", "critical"] = Field(
        default="", description="Interruption level: active, timeSensitive, passive, critical.")
    icon: str = Field(default="", description="URL of the icon to show.")
    sound: str = Field(default="", description="Sound name.")
    url: str = Field(default="", description="URL opened when the push is tapped.")

    def templates(self) -> dict[str, str]:
        """`body` and `title`."""
        return {"body": self.template, "title": self.title}

    @field_validator("server_url")
    @classmethod
    def _server_url(cls, value: str) -> str:
        return check_url(value, "serverURL")
