"""Tests of waiting_room.store, mirroring its modules."""
