-- Turnpike core schema for PostgreSQL. Each entity row keeps its full JSON in `entity`; the columns
-- beside it exist for the database to enforce what Kong's database enforces: primary keys,
-- unique fields, composite cache keys and foreign keys (restrict by default, cascade where
-- Kong cascades).

CREATE TABLE workspaces (
  id     TEXT COLLATE "C" PRIMARY KEY,
  name   TEXT UNIQUE,
  entity TEXT NOT NULL
);

CREATE TABLE consumers (
  id        TEXT COLLATE "C" PRIMARY KEY,
  ws_id     TEXT,
  username  TEXT UNIQUE,
  custom_id TEXT UNIQUE,
  entity    TEXT NOT NULL
);

CREATE TABLE certificates (
  id     TEXT COLLATE "C" PRIMARY KEY,
  ws_id  TEXT,
  entity TEXT NOT NULL
);

CREATE TABLE services (
  id                    TEXT COLLATE "C" PRIMARY KEY,
  ws_id                 TEXT,
  name                  TEXT UNIQUE,
  client_certificate_id TEXT REFERENCES certificates (id),
  entity                TEXT NOT NULL
);
CREATE INDEX services_client_certificate_id_idx ON services (client_certificate_id);

CREATE TABLE routes (
  id         TEXT COLLATE "C" PRIMARY KEY,
  ws_id      TEXT,
  name       TEXT UNIQUE,
  service_id TEXT REFERENCES services (id),
  entity     TEXT NOT NULL
);
CREATE INDEX routes_service_id_idx ON routes (service_id);

CREATE TABLE snis (
  id             TEXT COLLATE "C" PRIMARY KEY,
  ws_id          TEXT,
  name           TEXT UNIQUE,
  certificate_id TEXT REFERENCES certificates (id),
  entity         TEXT NOT NULL
);
CREATE INDEX snis_certificate_id_idx ON snis (certificate_id);

CREATE TABLE upstreams (
  id                    TEXT COLLATE "C" PRIMARY KEY,
  ws_id                 TEXT,
  name                  TEXT UNIQUE,
  client_certificate_id TEXT REFERENCES certificates (id),
  entity                TEXT NOT NULL
);
CREATE INDEX upstreams_client_certificate_id_idx ON upstreams (client_certificate_id);

CREATE TABLE targets (
  id          TEXT COLLATE "C" PRIMARY KEY,
  ws_id       TEXT,
  cache_key   TEXT UNIQUE,
  upstream_id TEXT REFERENCES upstreams (id) ON DELETE CASCADE,
  entity      TEXT NOT NULL
);
CREATE INDEX targets_upstream_id_idx ON targets (upstream_id);

CREATE TABLE plugins (
  id            TEXT COLLATE "C" PRIMARY KEY,
  ws_id         TEXT,
  instance_name TEXT UNIQUE,
  cache_key     TEXT UNIQUE,
  route_id      TEXT REFERENCES routes (id) ON DELETE CASCADE,
  service_id    TEXT REFERENCES services (id) ON DELETE CASCADE,
  consumer_id   TEXT REFERENCES consumers (id) ON DELETE CASCADE,
  entity        TEXT NOT NULL
);
CREATE INDEX plugins_route_id_idx ON plugins (route_id);
CREATE INDEX plugins_service_id_idx ON plugins (service_id);
CREATE INDEX plugins_consumer_id_idx ON plugins (consumer_id);

CREATE TABLE ca_certificates (
  id          TEXT COLLATE "C" PRIMARY KEY,
  cert_digest TEXT UNIQUE,
  entity      TEXT NOT NULL
);

CREATE TABLE sm_vaults (
  id     TEXT COLLATE "C" PRIMARY KEY,
  ws_id  TEXT,
  prefix TEXT UNIQUE,
  entity TEXT NOT NULL
);

CREATE TABLE key_sets (
  id     TEXT COLLATE "C" PRIMARY KEY,
  ws_id  TEXT,
  name   TEXT UNIQUE,
  entity TEXT NOT NULL
);

CREATE TABLE keys (
  id        TEXT COLLATE "C" PRIMARY KEY,
  ws_id     TEXT,
  name      TEXT UNIQUE,
  cache_key TEXT UNIQUE,
  set_id    TEXT REFERENCES key_sets (id) ON DELETE CASCADE,
  entity    TEXT NOT NULL
);
CREATE INDEX keys_set_id_idx ON keys (set_id);

CREATE TABLE tags (
  entity_id   TEXT COLLATE "C" NOT NULL,
  entity_name TEXT NOT NULL,
  tag         TEXT NOT NULL,
  ordinality  BIGINT NOT NULL,
  PRIMARY KEY (entity_id, tag)
);
CREATE INDEX tags_tag_idx ON tags (tag, entity_id);
CREATE INDEX tags_entity_name_idx ON tags (entity_name, tag);
