-- Durable erasure records. A user's erasure first writes its record here and destroys the user's data
-- keys, in one transaction; the rest (the user grain's row, API-key routes, the directory entry) follows
-- and may fail. Whoever retries reads the record and finishes it, and while it is open no new data key
-- is created for the scope, so a stale activation cannot write the user's state again under a fresh key.
-- The record names the scope (user:<pseudonym>) and the API key ids to unbind, never a user id.
CREATE TABLE bastion_keys.bastion_erasures
(
    scope        text        NOT NULL PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz NULL,
    api_key_ids  text[]      NOT NULL DEFAULT '{}'
);
