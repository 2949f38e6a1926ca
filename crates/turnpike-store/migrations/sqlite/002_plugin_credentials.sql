-- The entities of the bundled authentication plugins (Kong's plugin DAOs): one table each,
-- credentials deleted with their consumer.

CREATE TABLE keyauth_credentials (
  id          TEXT PRIMARY KEY,
  ws_id       TEXT,
  key         TEXT UNIQUE,
  consumer_id TEXT REFERENCES consumers (id) ON DELETE CASCADE,
  entity      TEXT NOT NULL
);
CREATE INDEX keyauth_credentials_consumer_id_idx ON keyauth_credentials (consumer_id);

CREATE TABLE basicauth_credentials (
  id          TEXT PRIMARY KEY,
  ws_id       TEXT,
  username    TEXT UNIQUE,
  consumer_id TEXT REFERENCES consumers (id) ON DELETE CASCADE,
  entity      TEXT NOT NULL
);
CREATE INDEX basicauth_credentials_consumer_id_idx ON basicauth_credentials (consumer_id);

CREATE TABLE jwt_secrets (
  id          TEXT PRIMARY KEY,
  ws_id       TEXT,
  key         TEXT UNIQUE,
  consumer_id TEXT REFERENCES consumers (id) ON DELETE CASCADE,
  entity      TEXT NOT NULL
);
CREATE INDEX jwt_secrets_consumer_id_idx ON jwt_secrets (consumer_id);

CREATE TABLE hmacauth_credentials (
  id          TEXT PRIMARY KEY,
  ws_id       TEXT,
  username    TEXT UNIQUE,
  consumer_id TEXT REFERENCES consumers (id) ON DELETE CASCADE,
  entity      TEXT NOT NULL
);
CREATE INDEX hmacauth_credentials_consumer_id_idx ON hmacauth_credentials (consumer_id);

CREATE TABLE acls (
  id          TEXT PRIMARY KEY,
  ws_id       TEXT,
  cache_key   TEXT UNIQUE,
  consumer_id TEXT REFERENCES consumers (id) ON DELETE CASCADE,
  entity      TEXT NOT NULL
);
CREATE INDEX acls_consumer_id_idx ON acls (consumer_id);
