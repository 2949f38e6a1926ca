"""Reference implementation of Kong 3.9.1's deterministic declarative ids
(generate_ids / get_key_for_uuid_gen / build_cache_key in
kong/db/schema/others/declarative_config.lua), for the bundled entities.

    id = uuid5(uuid5(UUID("fd02801f-0957-4a15-a55a-c8d9606f30b5"), <schema name>), <key>)

Usage: python3 kong_ids.py FILE.yml  -> prints a JSON list of {entity, path, key, id}
(key None + id "random" = Kong gives the entity a random v4 UUID on every load).
"""
import json, sys, uuid
import yaml

NS = uuid.UUID("fd02801f-0957-4a15-a55a-c8d9606f30b5")

def kong_uuid(schema, key):
    return str(uuid.uuid5(uuid.uuid5(NS, schema), key))

# cache_key: list of (field, auto, required); ek: endpoint_key; ek_unique; fks: field -> entity
S = {
    # own_fields: fields of the entity that share a name with an entity (services.ca_certificates,
    # routes.snis, certificates.snis): generate_ids does not descend into them
    "services":   dict(ek="name", ek_unique=True, fks={"client_certificate": "certificates"},
                       own_fields={"ca_certificates"}),
    "routes":     dict(ek="name", ek_unique=True, fks={"service": "services"}, own_fields={"snis"}),
    "consumers":  dict(ek="username", ek_unique=True),
    "plugins":    dict(ck=[("name", False, True), ("route", False, False),
                           ("service", False, False), ("consumer", False, False)],
                       ek="instance_name", ek_unique=True,
                       fks={"route": "routes", "service": "services", "consumer": "consumers"}),
    "upstreams":  dict(ek="name", ek_unique=True, fks={"client_certificate": "certificates"}),
    "targets":    dict(ck=[("upstream", False, True), ("target", False, True)],
                       ek="target", ek_unique=False, fks={"upstream": "upstreams"}),
    # certificates.snis is also a (transient) field of certificates: nested snis are
    # skipped by generate_ids and get random ids
    "certificates": dict(own_fields={"snis"}),
    "snis":       dict(ek="name", ek_unique=True, fks={"certificate": "certificates"}),
    "ca_certificates": dict(),
    "key_sets":   dict(ek="name", ek_unique=True),
    "keys":       dict(ck=[("kid", False, True), ("set", False, False)], ek="name", ek_unique=True,
                       fks={"set": "key_sets"}),
    "vaults":     dict(ck=[("prefix", False, True)], ek="prefix", ek_unique=True),
    "acls":       dict(ck=[("consumer", False, True), ("group", False, True)],
                       fks={"consumer": "consumers"}),
    "basicauth_credentials": dict(ck=[("username", False, True)], ek="username", ek_unique=True,
                                  fks={"consumer": "consumers"}),
    "hmacauth_credentials":  dict(ck=[("username", False, True)], ek="username", ek_unique=True,
                                  fks={"consumer": "consumers"}),
    "jwt_secrets":           dict(ck=[("key", True, False)], ek="key", ek_unique=True,
                                  fks={"consumer": "consumers"}),
    "keyauth_credentials":   dict(ck=[("key", True, False)], ek="key", ek_unique=True,
                                  fks={"consumer": "consumers"}),
    "oauth2_credentials":    dict(ck=[("client_id", True, False)], ek="client_id", ek_unique=True,
                                  fks={"consumer": "consumers"}),
}

# known_entities order of Kong 3.9.1 (schema_topological_sort of core + bundled plugin DAOs)
ORDER = ["workspaces", "ca_certificates", "certificates", "clustering_data_planes", "consumers",
         "key_sets", "keys", "parameters", "services", "routes", "filter_chains", "plugins",
         "snis", "upstreams", "targets", "vaults", "acls", "acme_storage",
         "basicauth_credentials", "hmacauth_credentials", "jwt_secrets", "keyauth_credentials",
         "oauth2_credentials", "oauth2_authorization_codes", "oauth2_tokens",
         "ratelimiting_metrics", "sessions"]

def child_key(parent, entity):
    for f, ref in S.get(entity, {}).get("fks", {}).items():
        if ref == parent:
            return f
    return None

def build_cache_key(entity, item, meta, parent_id, ck_field):
    ck = [entity, "*"]          # ws_id_for(item): "*" when the item has no ws_id
    for field, auto, required in meta["ck"]:
        if auto:
            return None         # e.g. keyauth key, jwt key: never deterministic
        v = item.get(field, None) if field in item else None
        if field in item and isinstance(v, str):
            ck.append(v)        # NB: a reference by name/id is hashed as written
        elif field not in item:
            if field == ck_field:
                if parent_id is None:
                    return None # parent has a random id
                ck.append(parent_id)
            elif required:
                return None
            else:
                ck.append("")
        # present but not a string (null, table, number): nothing appended
    return ":".join(ck)

def key_for(entity, item, parent, parent_id):
    meta = S.get(entity, {})
    if "id" in item:
        return None, item["id"]
    if "ck" in meta:
        key = build_cache_key(entity, item, meta, parent_id, child_key(parent, entity) if parent else None)
        return key, (kong_uuid(entity, key) if key is not None else "random")
    ek = meta.get("ek")
    if ek and ek in item:
        key = item[ek]
        if not meta.get("ek_unique"):
            # non-unique endpoint key: ":" .. parent pk (or the fk value) .. ":" .. ws
            for f, ref in meta.get("fks", {}).items():
                key += ":" + (parent_id if parent and ref == parent else str(item.get(f)))
            key += ":*"
        return key, kong_uuid(entity, key)
    return None, "random"

def walk(node, parent=None, parent_id=None, path="", out=None):
    for entity in ORDER:
        items = node.get(entity)
        if not isinstance(items, list):
            continue
        if parent and entity in S.get(parent, {}).get("own_fields", ()):
            if parent == "certificates" and entity == "snis":
                # nested snis are still entities (the field is transient) but get random ids
                for i, item in enumerate(items):
                    out.append(dict(entity=entity, path=f"{path}{entity}[{i}]", key=None,
                                    id=item.get("id", "random")))
            continue
        for i, item in enumerate(items):
            key, id_ = key_for(entity, item, parent, parent_id)
            p = f"{path}{entity}[{i}]"
            out.append(dict(entity=entity, path=p, key=key, id=id_))
            walk(item, entity, None if id_ == "random" else id_, p + ".", out)
    return out

if __name__ == "__main__":
    doc = yaml.safe_load(open(sys.argv[1]))
    print(json.dumps(walk(doc, out=[]), indent=2))
