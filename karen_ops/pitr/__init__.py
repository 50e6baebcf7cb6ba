"""Continuous archiving and point-in-time recovery of the AI Karen database.

WAL files go into the backup store through ``karen-ops wal-push`` (PostgreSQL's
``archive_command``); base backups are taken daily by ``postgres_base_backup``; ``wal_archive``
proves every hour that no WAL file is missing since the newest base backup; ``pitr_drill``
restores the two weekly into a private server and compares it with the nightly logical dump;
``wal_retention`` deletes the base backups and WAL the policy no longer needs, after each base
backup. ``karen-ops pitr-restore`` recovers the cluster to a moment into a new data folder.
"""
