"""Tests of waiting_room.web, mirroring its modules."""
