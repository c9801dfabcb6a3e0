-- Wrapped data keys (DEKs) for encryption at rest, in the key-store database: a database of its
-- own, with its own runtime role and backup policy, so that the state database and its backups
-- never hold a key. Destroying a scope's DEK here makes every copy of that scope's state unreadable.
-- A destroyed key keeps its row (who had a key, and when it went) but loses its wrapped bytes.
CREATE SCHEMA bastion_keys;

CREATE TABLE bastion_keys.bastion_data_keys
(
    scope        text        NOT NULL,
    dek_id       uuid        NOT NULL PRIMARY KEY,
    kek_version  integer     NOT NULL,
    wrapped      bytea       NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz NULL,
    CONSTRAINT destroyed_keys_hold_no_bytes CHECK ((wrapped IS NULL) = (destroyed_at IS NOT NULL))
);

-- One live DEK per scope: two silos creating a scope's first key at once end up with the same one.
CREATE UNIQUE INDEX bastion_data_keys_one_live_per_scope ON bastion_keys.bastion_data_keys (scope) WHERE destroyed_at IS NULL;
