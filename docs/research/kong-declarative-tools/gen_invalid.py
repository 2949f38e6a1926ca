"""Writes crates/turnpike-test/fixtures/declarative/invalid-*.yml and their *.expected.json:
Kong 3.9.1's answers to POST /config, POST /config?flatten_errors=1 and `kong config parse`,
derived from kong/db/schema/others/declarative_config.lua, kong/db/errors.lua and the specs
(see docs/research/kong-declarative.md). Each case gives the Lua error table (dicts with int
keys for Lua array indexes); luapretty.py renders Kong's `message` and lua-cjson's `fields`.

Run: python3 docs/research/kong-declarative-tools/gen_invalid.py
"""
import json, os, uuid, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from luapretty import write, to_json_fields

NS = uuid.UUID("fd02801f-0957-4a15-a55a-c8d9606f30b5")
def kid(schema, key): return str(uuid.uuid5(uuid.uuid5(NS, schema), key))

def pretty_print_error(err_t, item=None, indent=""):
    # kong/db/declarative/init.lua pretty_print_error (pairs order: we use insertion order)
    out = []
    if isinstance(err_t, list):
        err_t = {i + 1: v for i, v in enumerate(err_t)}
    for k, v in err_t.items():
        pk = ("- in entry %d of '%s'" % (k, item)) if isinstance(k, int) else ("in '%s'" % k)
        if isinstance(v, (dict, list)):
            out.append(indent + pk + ":")
            out.append(pretty_print_error(v, k, indent + "  "))
        else:
            out.append(indent + pk + ": " + v)
    return "\n".join(out)

HDR = """# {name}: INVALID on purpose: {what}
#
# Expected Kong 3.9 response to POST /config (and the `kong config parse` failure): see
# {stem}.expected.json (confidence: {conf}; reasoning in docs/research/kong-declarative.md).
"""

cases = []
def case(name, what, conf, yaml_body, err_t, flat_fields, flattened, notes, cli_err=None, no_flatten=False):
    cases.append(dict(name=name, what=what, conf=conf, yaml=yaml_body, err_t=err_t,
                      flat_fields=flat_fields, flattened=flattened, notes=notes, cli_err=cli_err,
                      no_flatten=no_flatten))

SVC = """services:
- name: orders
  url: http://127.0.0.1:18999
  routes:
  - name: orders
    paths:
    - /orders
"""

case("invalid-missing-format-version.yml", "no _format_version at all", "high",
     SVC,
     {"_format_version": "required field missing"},
     {"_format_version": "required field missing"}, [],
     "Schema error on the required top-level field. Top-level (non-entity) errors are never flattened: with ?flatten_errors=1 they stay in `fields` and flattened_errors is an empty Lua table, which lua-cjson encodes as {}.")

case("invalid-bad-format-version.yml", "_format_version is not one of 1.1, 2.1, 3.0", "high",
     '_format_version: "4.0"\n\n' + SVC,
     {"_format_version": "expected one of: 1.1, 2.1, 3.0"},
     {"_format_version": "expected one of: 1.1, 2.1, 3.0"}, [],
     "one_of check of the declarative schema (spec 01-validate_spec.lua uses \"foobar\").")

case("invalid-format-version-number.yml", "_format_version written as a YAML number (3.0 unquoted)", "high",
     '_format_version: 3.0\n\n' + SVC,
     {"_format_version": "expected a string"},
     {"_format_version": "expected a string"}, [],
     "YAML reads 3.0 as a float, the schema wants a string (spec 01-validate_spec.lua: `_format_version: 1.1`). The 1.1/2.1 path migration only fires for the strings \"1.1\"/\"2.1\".")

case("invalid-unknown-field.yml", "a route attribute (strip_path) written on a service", "high",
     '''_format_version: "3.0"

services:
- name: orders
  url: http://127.0.0.1:18999
  strip_path: false
  tags:
  - team-orders
  routes:
  - name: orders
    paths:
    - /orders
''',
     {"services": [{"strip_path": "unknown field"}]},
     {},
     [{"entity_type": "service", "entity_name": "orders", "entity_tags": ["team-orders"],
       "entity": {"name": "orders", "url": "http://127.0.0.1:18999", "strip_path": False, "tags": ["team-orders"]},
       "errors": [{"type": "field", "field": "strip_path", "message": "unknown field"}]}],
     "Entity errors are flattened and drained from `fields`; the flattened `entity` is the input object with its nested child collections (routes, plugins, ...) removed; no entity_id because the input has no id (validation failed before ids are generated).")

case("invalid-wrong-type.yml", "the 2nd service's port is a string", "high",
     '''_format_version: "3.0"

services:
- name: orders
  url: http://127.0.0.1:18999
- name: billing
  protocol: http
  host: 127.0.0.1
  port: "18999"
  routes:
  - name: billing
    paths:
    - /billing
''',
     {"services": {2: {"port": "expected an integer"}}},
     {},
     [{"entity_type": "service", "entity_name": "billing",
       "entity": {"name": "billing", "protocol": "http", "host": "127.0.0.1", "port": "18999"},
       "errors": [{"type": "field", "field": "port", "message": "expected an integer"}]}],
     "An error on the 2nd array element: the Lua error table is {[2]={...}}; lua-cjson encodes it as an array with null for entry 1, pl.pretty writes `[2]=`. (Tests substituting 18999 keep it a string.)")

case("invalid-duplicate-service-names.yml", "two services named orders", "high",
     '''_format_version: "3.0"

services:
- name: orders
  url: http://127.0.0.1:18999
- name: orders
  url: http://127.0.0.1:18999/v2
''',
     {"services": {2: "uniqueness violation: 'services' entity with name set to 'orders' already declared"}},
     {},
     [{"entity_type": "service", "entity_name": "orders", "entity_id": kid("services", "orders"),
       "entity": {"name": "orders", "url": "http://127.0.0.1:18999/v2", "id": kid("services", "orders")},
       "errors": [{"type": "entity", "message": "uniqueness violation: 'services' entity with name set to 'orders' already declared"}]}],
     "Same shape as 15-off_spec.lua 'returns 400 on an endpoint key uniqueness error'. Both services get the same generated id (uuid5 of the name) but the primary-key check is skipped once the name check failed. Flattened: medium confidence on `entity` carrying the generated `id` (generate_ids replaces the input items with copies that have ids before references are checked).")

case("invalid-dangling-reference.yml", "a top-level route references a service that does not exist", "high (plain body); medium (flattened body)",
     '''_format_version: "3.0"

services:
- name: orders
  url: http://127.0.0.1:18999

routes:
- name: orders-route
  service: orders
  paths:
  - /orders
- name: billing-route
  service: billing
  paths:
  - /billing
''',
     {"routes": {"billing-route": ["invalid reference 'service: billing' (no such entry in 'services')"]}},
     {},
     [],
     "Reference errors are keyed by the referring entity's endpoint-key value (here the route name), else its id; the value is an array of messages (03-flatten_spec.lua 'fixes #7696'). With ?flatten_errors=1 Kong 3.9 cannot match a name key to an input index, logs a warning and drops the error: fields {}, flattened_errors {}, message 'declarative config is invalid: {}'. If the route had no name, the key would be ngx.null and Kong would fail to JSON-encode the body (HTTP 500): do not rely on that case.")

case("invalid-nested-route-service-mismatch.yml", "a route nested under a service also names a (missing) service", "medium-high",
     '''_format_version: "3.0"

services:
- name: orders
  url: http://127.0.0.1:18999
  routes:
  - name: orders-route
    service: billing
    paths:
    - /orders
''',
     {"services": [{"routes": [{"service": "value must be null"}]}]},
     {},
     [{"entity_type": "route", "entity_name": "orders-route",
       "entity": {"name": "orders-route", "service": "billing", "paths": ["/orders"]},
       "errors": [{"type": "field", "field": "service", "message": "value must be null"}]}],
     "Nested entities must leave every foreign key empty (the nested schema copy sets eq=null). The first validation fails with 'value must be null'; Kong retries with a schema that accepts foreign keys after resolving names; 'billing' does not resolve, so that pass fails too (service.id 'missing primary key') and the two error tables are merged, the 'value must be null' string winning. NB: if the named service DID exist, the retry would pass and Kong 3.9 would accept the file (the nesting parent wins).")

case("invalid-route-under-consumer.yml", "routes nested under a consumer (no such relationship)", "high",
     '''_format_version: "3.0"

consumers:
- username: alice
  routes:
  - name: alice-route
    paths:
    - /alice
''',
     {"consumers": [{"routes": "unknown field"}]},
     {},
     [{"entity_type": "consumer", "entity_name": None,
       "entity": {"username": "alice", "routes": [{"name": "alice-route", "paths": ["/alice"]}]},
       "errors": [{"type": "field", "field": "routes", "message": "unknown field"}]}],
     "Only entities with a foreign key to consumers can nest under a consumer. entity_name is taken from entity.name only, so a consumer never has one (username is not used).")

case("invalid-consumer-no-identity.yml", "the 2nd consumer has neither username nor custom_id", "high",
     '''_format_version: "3.0"

consumers:
- username: alice
- tags:
  - orphan
''',
     {"consumers": {2: {"@entity": ["at least one of these fields must be non-empty: 'custom_id', 'username'"]}}},
     {},
     [{"entity_type": "consumer", "entity_tags": ["orphan"],
       "entity": {"tags": ["orphan"]},
       "errors": [{"type": "entity", "message": "at least one of these fields must be non-empty: 'custom_id', 'username'"}]}],
     "consumers' entity check at_least_one_of {custom_id, username}; entity-level errors live under the '@entity' key as an array of strings.")

case("invalid-duplicate-custom-id.yml", "two consumers share a custom_id", "high (plain body); medium (flattened body)",
     '''_format_version: "3.0"

consumers:
- username: alice
  custom_id: crm-1001
- username: alice-duplicate
  custom_id: crm-1001
''',
     {"consumers": {"alice-duplicate": "uniqueness violation: 'consumers' entity with custom_id set to 'crm-1001' already declared"}},
     {},
     [],
     "Non-endpoint unique fields are checked last (flatten), keyed by the later entity's endpoint-key value (or its id) - 15-off_spec.lua 'returns 400 on a regular key uniqueness error'. Only one such error per entity type survives (the errs table is reset for each violation). Flattened: the name key matches no input index, so the error is dropped (fields {}, flattened_errors {}).")

case("invalid-duplicate-keyauth-key.yml", "the same key-auth key under two consumers", "medium-high",
     '''_format_version: "3.0"

consumers:
- username: alice
  keyauth_credentials:
  - key: shared-key
- username: bob
  keyauth_credentials:
  - key: shared-key
''',
     {"keyauth_credentials": ["uniqueness violation: 'keyauth_credentials' entity with key set to 'shared-key' already declared"]},
     {"keyauth_credentials": ["uniqueness violation: 'keyauth_credentials' entity with key set to 'shared-key' already declared"]},
     [],
     "Endpoint-key uniqueness of nested entities is reported at the TOP level under the child's entity name, at the child's index in its own nested array (here 1), not under consumers[2]. With flatten_errors the top-level input has no keyauth_credentials array, so the error is put back into `fields` and nothing is flattened.")

case("invalid-nested-plugin-extra-fk.yml", "a plugin nested under a service also names a (missing) consumer", "medium-high",
     '''_format_version: "3.0"

services:
- name: orders
  url: http://127.0.0.1:18999
  plugins:
  - name: rate-limiting
    consumer: ghost
    config:
      minute: 10
      policy: local
''',
     {"services": [{"plugins": [{"consumer": "value must be null"}]}]},
     {},
     [{"entity_type": "plugin", "entity_name": "rate-limiting",
       "entity": {"name": "rate-limiting", "consumer": "ghost", "config": {"minute": 10, "policy": "local"}},
       "errors": [{"type": "field", "field": "consumer", "message": "value must be null"}]}],
     "Kong's rule: an entity with 2+ foreign keys (here service+consumer) must be written at the top level. As with invalid-nested-route-service-mismatch.yml, Kong 3.9 actually accepts the nested form when the extra reference resolves (consumer ghost existing), through its second validation pass.")

case("invalid-deck-info.yml", "decK's _info metadata key", "high",
     '''_format_version: "3.0"
_info:
  select_tags:
  - team-orders
  defaults:
    service:
      read_timeout: 30000

''' + SVC,
     {"_info": "unknown field"},
     {"_info": "unknown field"}, [],
     "Kong's declarative schema knows only _format_version, _transform, _comment, _ignore and the entity arrays; decK's _info, _workspace, _konnect, _plugin_configs are all 'unknown field'.")

case("invalid-scalar.yml", "the document is a YAML scalar, not a mapping", "high",
     "bobby tables\n",
     {"error": "failed parsing declarative configuration: expected an object"},
     None, None,
     "Copied from 15-off_spec.lua 'returns 400 on an invalid config string'. This fails in unserialize, before flattening, so ?flatten_errors=1 changes nothing (no flattened_errors key).",
     cli_err="failed parsing declarative configuration: expected an object", no_flatten=True)


outdir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "crates", "turnpike-test", "fixtures", "declarative")
for c in cases:
    stem = c["name"].rsplit(".", 1)[0]
    hdr = HDR.format(name=c["name"], what=c["what"], conf=c["conf"], stem=stem)
    with open(os.path.join(outdir, c["name"]), "w") as f:
        if c["name"] == "invalid-scalar.yml":
            # a comment line is fine: the document is still just a scalar
            f.write(hdr + "\n" + c["yaml"])
        else:
            f.write(hdr + "\n" + c["yaml"])
    body = {"code": 14, "name": "invalid declarative configuration",
            "message": "declarative config is invalid: " + write(c["err_t"]),
            "fields": to_json_fields(c["err_t"])}
    exp = {"status": 400, "body": body}
    if c["no_flatten"]:
        exp["flatten_errors_body"] = body
    else:
        ff = c["flat_fields"]
        fl = []
        for e in c["flattened"]:
            e = {k: v for k, v in e.items() if v is not None}
            fl.append(e)
        exp["flatten_errors_body"] = {"code": 14, "name": "invalid declarative configuration",
            "message": "declarative config is invalid: " + write(ff),
            "fields": to_json_fields(ff) if ff else {},
            "flattened_errors": fl if fl else {}}
    cli = c["cli_err"] if c["cli_err"] else pretty_print_error(c["err_t"])
    exp["kong_config_parse"] = {"exit_code": 1, "stdout": "",
        "stderr": "Error: Failed parsing:\n" + cli + "\n\n  Run with --v (verbose) or --vv (debug) for more details\n"}
    exp["confidence"] = c["conf"]
    exp["notes"] = c["notes"]
    with open(os.path.join(outdir, stem + ".expected.json"), "w") as f:
        json.dump(exp, f, indent=2, ensure_ascii=False)
        f.write("\n")
print(len(cases), "cases")
