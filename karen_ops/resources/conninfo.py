"""libpq connection parameters, kept apart from the password wherever they are shown or passed.

A connection URL may carry a password. It goes to psycopg in memory and to PostgreSQL's own
tools through the ``PGPASSWORD`` environment variable of the child process, never through argv
(visible to every user in ``ps``), logs or metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg.conninfo

from karen_ops.errors import ConfigurationError

# Parameters that are secret, or that can carry a secret, and so are never shown.
_SECRET_KEYS = frozenset({"password", "sslpassword"})


@dataclass(frozen=True)
class ConnInfo:
    """The libpq keyword parameters of one database connection."""

    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, url: str, *, setting: str) -> ConnInfo:
        """Parse a libpq URL or keyword string; ``setting`` names where it came from."""
        try:
            params = psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.ProgrammingError:
            # The parser's message quotes the text, password included, so it is not passed on.
            raise ConfigurationError(
                f"{setting} is not a valid libpq connection string (not shown: it may hold a "
                "password); expected postgresql://user:password@host:5432/dbname, with any "
                "@ : / % ? in the user or password percent-encoded"
            ) from None
        params = {key: str(value) for key, value in params.items() if value is not None}
        if not params.get("dbname"):
            # Without one, libpq would pick a database from PGDATABASE or the user name, and
            # the backup would be filed under a name that is not the one dumped.
            raise ConfigurationError(
                f"{setting} names no database; add it, e.g. postgresql://user@host:5432/karen"
            )
        return cls(params)

    @property
    def dbname(self) -> str:
        return self.params.get("dbname") or self.params.get("user") or "postgres"

    @property
    def password(self) -> str | None:
        return self.params.get("password") or None

    def with_dbname(self, dbname: str) -> ConnInfo:
        return ConnInfo({**self.params, "dbname": dbname})

    def server(self) -> str:
        """host:port, or the socket folder, as an operator would name the server."""
        host = self.params.get("host") or self.params.get("hostaddr") or "localhost"
        port = self.params.get("port") or "5432"
        return f"{host}:{port}"

    def describe(self) -> str:
        """The database and server, for messages: ``chinook on 127.0.0.1:5432``."""
        return f"{self.dbname} on {self.server()}"

    def public_dsn(self) -> str:
        """The keyword conninfo without secrets: what tools get in argv and logs may show."""
        public = {k: v for k, v in self.params.items() if k not in _SECRET_KEYS}
        return psycopg.conninfo.make_conninfo(**public)

    def tool_environment(self) -> dict[str, str]:
        """Environment entries that hand the secrets to a libpq-based child process."""
        secrets = {}
        if self.password:
            secrets["PGPASSWORD"] = self.password
        if self.params.get("sslpassword"):
            # libpq has no environment variable for sslpassword; refuse rather than leak it.
            raise ConfigurationError(
                f"sslpassword cannot be passed to pg_dump or pg_restore for {self.describe()} "
                "without putting it on the command line; use an unencrypted client key instead"
            )
        return secrets

    def psycopg_kwargs(self) -> dict[str, str]:
        return dict(self.params)
