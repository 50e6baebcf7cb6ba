"""Database maintenance with evidence: table health, vacuum and reindex, before and after."""
