"""Helpers for the Redis-backed and multi-process tests: a private redis-server, product processes, sockets."""
