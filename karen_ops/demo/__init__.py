"""The embedded demo: a synthetic AI Karen database on an embedded server, backed up nightly."""
