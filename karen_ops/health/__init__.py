"""Health of the platform's components: five-minute probes, hourly detail, a daily report."""
