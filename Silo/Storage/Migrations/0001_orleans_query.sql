-- The Orleans ADO.NET providers read their SQL from this table at start-up
-- ("SELECT QueryKey, QueryText FROM OrleansQuery"). Unquoted identifiers fold to lower case;
-- Npgsql matches result columns case-insensitively, so the providers' PascalCase names still resolve.
CREATE TABLE OrleansQuery
(
    QueryKey  varchar(64) NOT NULL PRIMARY KEY,
    QueryText text        NOT NULL
);
