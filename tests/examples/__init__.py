"""The examples/ folder: run as a user would, against real processes."""
