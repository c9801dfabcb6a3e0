-- The committed version of every sealed grain state. Each envelope's associated data binds the version of
-- the row it was written as, and a read refuses a row older than the version recorded here: someone who can
-- write the state database, but not this one, cannot put back an older row (a key before its revocation, a
-- role before its removal) or delete a row. A state is named by the SHA-256 of its identity (grain type,
-- grain id, state name), never by a user id or pseudonym.
CREATE TABLE bastion_keys.bastion_state_versions
(
    state   bytea   NOT NULL PRIMARY KEY,
    version integer NOT NULL,
    CONSTRAINT state_is_a_sha256 CHECK (octet_length(state) = 32)
);
