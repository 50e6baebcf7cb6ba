"""How an expected failure ends a Dagster step: as a Failure with the message, not a traceback.

Errors karen-ops raises on purpose already say what failed and how to fix it; retrying would
not fix a wrong setting or a damaged archive, so Dagster's retries are switched off for them.

A refused request (``RequestRefused``) is marked in the Failure's metadata under
:data:`REFUSED`, so the run alerts can tell a request declined before any work from work that
broke, from the step's failure event alone.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from karen_ops.errors import KarenOpsError, RequestRefused

REFUSED = "refused"


@contextmanager
def expected_failures() -> Iterator[None]:
    try:
        yield
    except KarenOpsError as exc:
        metadata = {REFUSED: True} if isinstance(exc, RequestRefused) else None
        raise dg.Failure(description=str(exc), metadata=metadata, allow_retries=False) from exc
