"""Resources shared by every domain: PostgreSQL and its tools, and the backup store."""
