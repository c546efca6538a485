"""Tests of waiting_room.core, mirroring its modules."""
