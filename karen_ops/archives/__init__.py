"""File archives of the host: configuration (daily), the application folder and rotated logs."""
