"""What every channel offers the notifier."""

from __future__ import annotations

from typing import Protocol

from karen_ops.alerting.messages import Notification


class Channel(Protocol):
    """Delivers one notification, or raises DeliveryError saying why it could not."""

    name: str

    def describe(self) -> str:
        """Where the channel delivers, without secrets, for logs and errors."""
        ...

    def send(self, notification: Notification, *, deadline: float | None = None) -> None:
        """Deliver ``notification``, giving up once ``time.monotonic()`` passes ``deadline``."""
        ...
