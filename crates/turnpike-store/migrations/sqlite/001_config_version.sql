-- The configuration version: one row whose `version` every configuration write increments in
-- the transaction that changes the configuration. A node that reads a version newer than the
-- one it last saw knows that another node (or another process on the same file) changed the
-- configuration and rebuilds its snapshot.

CREATE TABLE config_version (
  id      INTEGER PRIMARY KEY CHECK (id = 1),
  version BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);
