"""How an expected failure ends a Dagster step: as a Failure with the message, not a traceback.

Errors karen-ops raises on purpose already say what failed and how to fix it; retrying would
not fix a wrong setting or a damaged archive, so Dagster's retries are switched off for them.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from karen_ops.errors import KarenOpsError


@contextmanager
def expected_failures() -> Iterator[None]:
    try:
        yield
    except KarenOpsError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
