-- Redis time, inside a MULTI that must stay on one slot (a cluster refuses a keyless TIME there).
--
-- KEYS[1] any key of the event the MULTI works on (it only routes the call)
--
-- Returns TIME's reply: {seconds, microseconds}.

return redis.call("TIME")
