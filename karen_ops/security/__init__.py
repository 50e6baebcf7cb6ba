"""Security and log analysis: suspicious traffic, critical-file integrity, errors, updates."""
