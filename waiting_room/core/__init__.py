"""Pure logic: no I/O, no Redis, no event loop; tested on its own."""
