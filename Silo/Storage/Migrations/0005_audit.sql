-- The audit trail (docs/audit.md): one hash chain of every security event, across all silos. A record's
-- hash is SHA-256 over the previous record's hash, its own sequence number, time and payload, so that
-- changing, removing or reordering any record breaks every hash after it. Payloads are envelopes
-- (AES-256-GCM under the "audit" data key, from the key store), holding pseudonyms, never user ids.
-- The runtime role may insert and read these tables, never update or delete (see SchemaMigrator);
-- retention (`audit prune`) runs as the owner and deletes only whole sealed prefixes.
CREATE TABLE bastion_audit
(
    seq         bigint      NOT NULL PRIMARY KEY,
    recorded_at timestamptz NOT NULL,
    payload     bytea       NOT NULL,
    prev_hash   bytea       NOT NULL,
    hash        bytea       NOT NULL,
    CONSTRAINT audit_seq_positive CHECK (seq > 0),
    CONSTRAINT audit_hashes_are_sha256 CHECK (octet_length(prev_hash) = 32 AND octet_length(hash) = 32)
);

CREATE INDEX bastion_audit_recorded_at ON bastion_audit (recorded_at);

-- Checkpoints: every so many records or minutes, the writer MACs the chain's head (sequence number and
-- hash) with the audit seal key from the key provider. A seal proves the chain up to it was this one
-- when it was sealed, so that rewriting the whole chain after a change needs the seal key too, and
-- removing records from its end is seen up to the last seal. Seals are never pruned: they anchor
-- what retention leaves.
CREATE TABLE bastion_audit_seals
(
    seq         bigint      NOT NULL PRIMARY KEY,
    hash        bytea       NOT NULL,
    sealed_at   timestamptz NOT NULL,
    key_version integer     NOT NULL,
    mac         bytea       NOT NULL,
    CONSTRAINT seal_seq_positive CHECK (seq > 0),
    CONSTRAINT seal_sizes CHECK (octet_length(hash) = 32 AND octet_length(mac) = 32)
);
