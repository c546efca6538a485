"""Redis: key names, Lua scripts and their typed wrappers, the client, the embedded server."""
