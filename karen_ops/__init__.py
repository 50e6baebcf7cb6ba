"""karen-ops: the operations of an AI Karen deployment as a Dagster code location."""
