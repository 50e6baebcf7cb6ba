"""``karen-ops doctor``: every connection and tool karen-ops needs, checked one line each.

Each check is a plain function that returns a ``Finding``: what was checked, whether it
passed, what was seen, and what to do when it did not. Checks only read, except the backup
store check, which writes and deletes one probe object. Nothing sends an alert: channels
are checked up to the point of delivery and no further.
"""
