//! Format 1.1 and 2.1 files: route paths that look like regexes get Kong 3's `~` prefix (and
//! a last percent-decoding), the others are normalized (`kong/db/declarative/migrations/
//! route_path.lua`, `kong/db/migrations/migrate_path_280_300.lua`). Top-level routes and
//! routes nested in top-level services are migrated, as in Kong.

use serde_json::{Map, Value};

/// Whether a path holds only characters a plain prefix path has.
fn is_not_regex(path: &str) -> bool {
    path.bytes().all(|b| b.is_ascii_alphanumeric() || b"._~/%-".contains(&b))
}

/// Kong's last decoding of a regex path: unreserved triplets decoded (regex metacharacters
/// escaped), reserved ones kept with uppercase hex.
fn normalize_regex(regex: &str) -> String {
    if !regex.contains('%') {
        return regex.to_owned();
    }
    let b = regex.as_bytes();
    let mut out = String::with_capacity(regex.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = &regex[i + 1..i + 3];
            if let Ok(n) = u8::from_str_radix(hex, 16) {
                if hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                    let reserved = b"!#$%&'()*+,/:;=?@[]".contains(&n);
                    if reserved {
                        out.push('%');
                        out.push_str(&hex.to_ascii_uppercase());
                    } else {
                        match n {
                            b'.' => out.push_str("\\."),
                            b'^' => out.push_str("\\^"),
                            b'-' => out.push_str("\\-"),
                            b'{' => out.push_str("\\{"),
                            b'}' => out.push_str("\\}"),
                            b'\\' => out.push_str("\\\\"),
                            b'|' => out.push_str("\\|"),
                            other => out.push(char::from(other)),
                        }
                    }
                    i += 3;
                    continue;
                }
            }
        }
        let ch = regex[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// One path, migrated.
pub(crate) fn migrate_path(path: &str) -> String {
    if is_not_regex(path) {
        crate::uri::normalize(path, true)
    } else {
        format!("~{}", normalize_regex(path))
    }
}

fn migrate_routes(routes: Option<&mut Value>) {
    let Some(Value::Array(routes)) = routes else { return };
    for r in routes {
        if let Some(Value::Array(paths)) = r.get_mut("paths") {
            for p in paths.iter_mut() {
                if let Value::String(s) = p {
                    *s = migrate_path(s);
                }
            }
        }
    }
}

/// Migrates the route paths of a 1.1 or 2.1 document.
pub(crate) fn route_paths(doc: &mut Map<String, Value>) {
    migrate_routes(doc.get_mut("routes"));
    if let Some(Value::Array(services)) = doc.get_mut("services") {
        for s in services {
            migrate_routes(s.get_mut("routes"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kong_path_migration() {
        assert_eq!(migrate_path("/plain/path"), "/plain/path");
        assert_eq!(migrate_path("/users/\\d+"), "~/users/\\d+");
        assert_eq!(migrate_path("/api/(v1|v2)$"), "~/api/(v1|v2)$");
        assert_eq!(migrate_path("/a%2Eb(x)"), "~/a\\.b(x)");
        assert_eq!(migrate_path("/a%2fb(x)"), "~/a%2Fb(x)");
        assert_eq!(migrate_path("/a%7Eb"), "/a~b");
    }
}
