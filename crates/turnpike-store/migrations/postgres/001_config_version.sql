-- The configuration version: one row whose `version` every configuration write increments in
-- the transaction that changes the configuration (which also sends `pg_notify` on the schema's
-- channel). A node that reads or is notified of a version newer than the one it last saw knows
-- that another node changed the configuration and rebuilds its snapshot.

CREATE TABLE config_version (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);
