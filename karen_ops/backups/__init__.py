"""Logical backups of the AI Karen database and the restores that prove them."""
