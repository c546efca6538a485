"""Tests of waiting_room.cli, mirroring its modules."""
