"""Errors of the alerting domain, below KarenOpsError::

AlertingError
├── DeliveryError      a channel did not accept a notification after its retries
└── StateUnavailable   the alert state store (Redis) could not be read or written
"""

from karen_ops.errors import KarenOpsError


class AlertingError(KarenOpsError):
    """Alerts could not be raised, routed or delivered."""


class DeliveryError(AlertingError):
    """A channel did not accept a notification after its bounded retries."""


class StateUnavailable(AlertingError):
    """The alert state store could not be read or written."""
