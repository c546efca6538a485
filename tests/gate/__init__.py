"""The gate, from its pure parts to a protected app in its own process."""
