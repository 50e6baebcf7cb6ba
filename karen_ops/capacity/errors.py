"""The error the capacity domain raises on purpose, under the root of karen_ops.errors.

TODO: move CapacityError into karen_ops/errors.py beside the other domains' errors when that
module is next edited; until then it lives here so the domain stays self-contained.
"""

from karen_ops.errors import KarenOpsError


class CapacityError(KarenOpsError):
    """A capacity observation or report could not be made."""
