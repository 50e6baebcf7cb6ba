"""What the capacity domain measures and against which limits, as one Dagster resource.

Every field has a default that matches the AI Karen schema and today's runbook, and can be
changed from the launchpad or in the code location's resources.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from karen_ops.capacity.growth import MetricSource


class CapacityResource(dg.ConfigurableResource):
    """Which tables and timestamp columns define growth, and the thresholds of the report."""

    schema_name: str = Field(
        default="public", description="Schema of the application's tables named below."
    )
    users_table: str = Field(default="users", description="Table with one row per user.")
    users_time_column: str = Field(
        default="created_at", description="When a user signed up (timestamptz)."
    )
    activity_table: str = Field(
        default="user_sessions",
        description="Table whose rows record user activity; a user is active on a day when "
        "one of its rows has its activity time on that day.",
    )
    activity_time_column: str = Field(
        default="last_activity_at", description="Time of the recorded activity (timestamptz)."
    )
    activity_user_column: str = Field(
        default="user_id", description="Column naming the active user, counted distinctly."
    )
    conversations_table: str = Field(default="conversations", description="Chat conversations.")
    conversations_time_column: str = Field(
        default="created_at", description="When a conversation was started."
    )
    messages_table: str = Field(default="messages", description="Chat messages.")
    messages_time_column: str = Field(default="created_at", description="When a message was sent.")

    disk_path: str = Field(
        default="/",
        description="A path on the disk whose use is observed (the PostgreSQL data disk).",
    )
    largest_relations: int = Field(
        default=10, description="How many of the largest tables and indexes a snapshot lists."
    )
    disk_threshold_percent: float = Field(
        default=85.0, description="Disk use at which storage must grow (runbook: 85%)."
    )
    database_size_limit_gib: float = Field(
        default=100.0,
        description="Database size at which the volume must grow or data be split; the "
        "forecast reports when the trend reaches it.",
    )

    def new_users(self) -> MetricSource:
        return MetricSource("new_users", self.schema_name, self.users_table, self.users_time_column)

    def active_users(self) -> MetricSource:
        return MetricSource(
            "active_users",
            self.schema_name,
            self.activity_table,
            self.activity_time_column,
            distinct_column=self.activity_user_column,
        )

    def conversations(self) -> MetricSource:
        return MetricSource(
            "conversations",
            self.schema_name,
            self.conversations_table,
            self.conversations_time_column,
        )

    def messages(self) -> MetricSource:
        return MetricSource(
            "messages", self.schema_name, self.messages_table, self.messages_time_column
        )

    def always_listed_tables(self) -> list[str]:
        return [self.users_table, self.conversations_table, self.messages_table]
