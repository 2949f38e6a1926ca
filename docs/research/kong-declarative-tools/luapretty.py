"""Emulation of penlight 1.14 pl.pretty.write(t, "") as used by kong/db/errors.lua
(declarative_config) to build "declarative config is invalid: {...}".

Lua tables are modelled as Python dicts whose keys are int (array/sparse indexes) or str;
Python lists are treated as Lua sequences {v1, v2, ...}.
"""
import re

LUA_KEYWORDS = {"and","break","do","else","elseif","end","false","for","function","goto","if",
                "in","local","nil","not","or","repeat","return","then","true","until","while"}

def quote_string(s):
    # pl.stringx.quote_string: long brackets if the string has a newline (and no \r)
    if "\n" in s and "\r" not in s:
        eq = ""
        while ("]" + eq + "]") in (s + "]"):
            eq += "="
        if s.startswith("\n"):
            s = "\n" + s
        return "[" + eq + "[" + s + "]" + eq + "]"
    out = ['"']
    for ch in s:
        if ch == '"': out.append('\\"')
        elif ch == '\\': out.append('\\\\')
        elif ch == '\r': out.append('\\r')
        elif ch == '\0': out.append('\\0')
        else: out.append(ch)
    out.append('"')
    return "".join(out)

def is_identifier(k):
    return isinstance(k, str) and re.match(r'^[A-Za-z_][A-Za-z0-9_]*$', k) and k not in LUA_KEYWORDS

def write(v):
    if isinstance(v, list):
        v = {i + 1: x for i, x in enumerate(v)}
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return quote_string(v)
    if v is None:
        return "nil"
    assert isinstance(v, dict)
    parts = []
    used = set()
    i = 1
    while i in v:               # array part, in order, without keys
        parts.append(write(v[i])); used.add(i); i += 1
    str_keys = sorted(k for k in v if not isinstance(k, int))
    for k in str_keys:
        key = k if is_identifier(k) else "[" + quote_string(k) + "]"
        parts.append(key + "=" + write(v[k]))
    for k in v:                 # remaining numeric keys, in Lua `pairs` order (we use insertion order)
        if isinstance(k, int) and k not in used:
            parts.append("[" + str(k) + "]=" + write(v[k]))
    return "{" + ",".join(parts) + "}"

def to_json_fields(v):
    """How lua-cjson (encode_sparse_array(nil,nil,2^15)) renders the same Lua table."""
    if isinstance(v, list):
        return [to_json_fields(x) for x in v]
    if isinstance(v, dict):
        if v and all(isinstance(k, int) and k > 0 for k in v):
            n = max(v)
            return [to_json_fields(v[i]) if i in v else None for i in range(1, n + 1)]
        return {str(k): to_json_fields(x) for k, x in v.items()}
    return v

if __name__ == "__main__":
    # self-checks against messages copied from spec/02-integration/04-admin_api/15-off_spec.lua
    assert write({"services": [{"host": "required field missing", "port": "value should be between 0 and 65535"}]}) == \
        '{services={{host="required field missing",port="value should be between 0 and 65535"}}}'
    assert write({"services": {2: "uniqueness violation: 'services' entity with name set to 'foo' already declared"}}) == \
        '{services={[2]="uniqueness violation: \'services\' entity with name set to \'foo\' already declared"}}'
    assert write({"error": "failed parsing declarative configuration: expected an object"}) == \
        '{error="failed parsing declarative configuration: expected an object"}'
    assert write({"consumers": {"bar": "uniqueness violation: 'consumers' entity with custom_id set to 'conflict' already declared"}}) == \
        '{consumers={bar="uniqueness violation: \'consumers\' entity with custom_id set to \'conflict\' already declared"}}'
    assert to_json_fields({"services": {2: "x"}}) == {"services": [None, "x"]}
    print("ok")
