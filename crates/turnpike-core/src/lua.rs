//! Small pieces of Lua behaviour that leak into Kong's API surface.
//!
//! Kong's schemas write string constraints as Lua patterns (`^%u+$`), and several of its
//! error messages embed Penlight's `pretty.write` rendering of a table
//! (`UNIQUE violation detected on '{name="x"}'`). We reproduce both so that schemas read like
//! Kong's and error texts match byte for byte.

use std::borrow::Cow;
use std::fmt;

use regex::bytes::Regex;

/// A Lua pattern compiled to an equivalent byte regex.
///
/// Keeps the original text for `GET /schemas` output and compiles a regex that matches the
/// same byte strings (`string.match` semantics: unanchored unless the pattern has `^`/`$`).
#[derive(Clone)]
pub struct LuaPattern {
    source: Cow<'static, str>,
    re: Regex,
}

impl fmt::Debug for LuaPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LuaPattern({:?})", self.source)
    }
}

impl PartialEq for LuaPattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl LuaPattern {
    /// Compiles a Lua pattern. Panics on a pattern we cannot translate: patterns are written
    /// by us in schema definitions, never taken from input, and every schema is exercised by
    /// the test-suite.
    pub fn new(source: impl Into<Cow<'static, str>>) -> Self {
        let source = source.into();
        let re = match translate(&source) {
            Ok(re) => re,
            Err(e) => panic!("invalid Lua pattern {source:?}: {e}"),
        };
        Self { source, re }
    }

    /// Like [`LuaPattern::new`] but returns an error for untranslatable input.
    pub fn try_new(source: &str) -> Result<Self, String> {
        let re = translate(source)?;
        Ok(Self { source: Cow::Owned(source.to_owned()), re })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// `string.match(value, pattern) ~= nil`
    pub fn is_match(&self, value: &str) -> bool {
        self.re.is_match(value.as_bytes())
    }
}

fn class_body(c: u8) -> Option<&'static str> {
    Some(match c {
        b'a' => "A-Za-z",
        b'd' => "0-9",
        b'l' => "a-z",
        b's' => "\\t\\n\\x0B\\x0C\\r ",
        b'u' => "A-Z",
        b'w' => "A-Za-z0-9",
        b'x' => "0-9A-Fa-f",
        b'p' => "!-/:-@\\[-`{-~",
        b'c' => "\\x00-\\x1F\\x7F",
        b'g' => "!-~",
        _ => return None,
    })
}

fn push_literal(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() || b == b'_' {
        out.push(b as char);
    } else {
        out.push_str(&format!("\\x{b:02X}"));
    }
}

/// Translates one "single character class" starting at `i`; returns the regex text and the
/// index after it.
fn single(p: &[u8], i: usize) -> Result<(String, usize), String> {
    match p[i] {
        b'%' => {
            let c = *p.get(i + 1).ok_or("malformed pattern (ends with '%')")?;
            if let Some(body) = class_body(c.to_ascii_lowercase()) {
                let neg = if c.is_ascii_uppercase() { "^" } else { "" };
                Ok((format!("[{neg}{body}]"), i + 2))
            } else if c.is_ascii_alphanumeric() {
                Err(format!("unsupported pattern item %{}", c as char))
            } else {
                let mut s = String::new();
                push_literal(&mut s, c);
                Ok((s, i + 2))
            }
        }
        b'.' => Ok(("(?s:.)".to_owned(), i + 1)),
        b'[' => {
            let mut j = i + 1;
            let mut s = String::from("[");
            if p.get(j) == Some(&b'^') {
                s.push('^');
                j += 1;
            }
            let mut first = true;
            loop {
                let c = *p.get(j).ok_or("malformed pattern (missing ']')")?;
                if c == b']' && !first {
                    j += 1;
                    break;
                }
                first = false;
                if c == b'%' {
                    let e = *p.get(j + 1).ok_or("malformed pattern (ends with '%')")?;
                    if let Some(body) = class_body(e.to_ascii_lowercase()) {
                        if e.is_ascii_uppercase() {
                            return Err("negated class inside a set is not supported".into());
                        }
                        s.push_str(body);
                    } else {
                        push_literal(&mut s, e);
                    }
                    j += 2;
                } else if p.get(j + 1) == Some(&b'-') && p.get(j + 2).is_some_and(|&n| n != b']') {
                    push_literal(&mut s, c);
                    s.push('-');
                    push_literal(&mut s, p[j + 2]);
                    j += 3;
                } else {
                    push_literal(&mut s, c);
                    j += 1;
                }
            }
            s.push(']');
            Ok((s, j))
        }
        c => {
            let mut s = String::new();
            push_literal(&mut s, c);
            Ok((s, i + 1))
        }
    }
}

fn translate(pattern: &str) -> Result<Regex, String> {
    let p = pattern.as_bytes();
    let mut out = String::from("(?-u)");
    let mut i = 0;
    if p.first() == Some(&b'^') {
        out.push('^');
        i = 1;
    }
    while i < p.len() {
        if p[i] == b'$' && i + 1 == p.len() {
            out.push_str("\\z");
            break;
        }
        if p[i] == b'(' || p[i] == b')' {
            out.push(p[i] as char);
            i += 1;
            continue;
        }
        if p[i] == b'%' && matches!(p.get(i + 1), Some(b'b' | b'f')) {
            return Err("%b and %f are not supported".into());
        }
        let (item, next) = single(p, i)?;
        out.push_str(&item);
        i = next;
        match p.get(i) {
            Some(b'*') => {
                out.push('*');
                i += 1;
            }
            Some(b'+') => {
                out.push('+');
                i += 1;
            }
            Some(b'-') => {
                out.push_str("*?");
                i += 1;
            }
            Some(b'?') => {
                out.push('?');
                i += 1;
            }
            _ => {}
        }
    }
    Regex::new(&out).map_err(|e| e.to_string())
}

/// A Lua table key, ordered as Penlight orders them when printing: numbers, then strings.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LuaKey {
    Int(usize),
    Str(String),
}

impl From<&str> for LuaKey {
    fn from(s: &str) -> Self {
        LuaKey::Str(s.to_owned())
    }
}

impl From<String> for LuaKey {
    fn from(s: String) -> Self {
        LuaKey::Str(s)
    }
}

impl From<usize> for LuaKey {
    fn from(i: usize) -> Self {
        LuaKey::Int(i)
    }
}

impl fmt::Display for LuaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LuaKey::Int(i) => write!(f, "{i}"),
            LuaKey::Str(s) => f.write_str(s),
        }
    }
}

/// Quotes a string as Penlight's `quote_string` does for simple values.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\{}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_identifier(s: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
        "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
    ];
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && !KEYWORDS.contains(&s)
}

/// Renders a key the way `pretty.write` does: bare identifiers, otherwise `["x"]` / `[1]`.
pub fn pretty_key(key: &LuaKey) -> String {
    match key {
        LuaKey::Int(i) => format!("[{i}]"),
        LuaKey::Str(s) if is_identifier(s) => s.clone(),
        LuaKey::Str(s) => format!("[{}]", quote(s)),
    }
}

/// Renders a JSON value as Penlight's `pretty.write(value, "")` (the compact form Kong uses
/// inside error messages): `{id="…"}`, `{consumer=null,name="x"}`.
///
/// JSON `null` prints as `null` (Kong rewrites the `"userdata: NULL"` it gets to `null`).
pub fn pretty_compact(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => lua_number(n),
        Value::String(s) => quote(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(pretty_compact).collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    format!("{}={}", pretty_key(&LuaKey::Str(k.clone())), pretty_compact(&map[k]))
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
    }
}

/// Formats a number as Lua's `tostring` does: integers without a fraction.
pub fn lua_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    lua_float(f)
}

/// `tostring(f)` for a Lua number (LuaJIT prints integral floats without `.0`, `%.14g` otherwise).
pub fn lua_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return format!("{}", f as i64);
    }
    // %.14g
    let s = format!("{:.13e}", f);
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-5..14).contains(&exp) {
        let digits = (13 - exp).max(0) as usize;
        let mut out = format!("{:.*}", digits, f);
        if out.contains('.') {
            while out.ends_with('0') {
                out.pop();
            }
            if out.ends_with('.') {
                out.pop();
            }
        }
        out
    } else {
        let mut m = mant.to_owned();
        if m.contains('.') {
            while m.ends_with('0') {
                m.pop();
            }
            if m.ends_with('.') {
                m.pop();
            }
        }
        format!("{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_match_like_lua() {
        let cases: &[(&str, &str, bool)] = &[
            ("^%u+$", "GET", true),
            ("^%u+$", "get", false),
            ("^%u+$", "", false),
            ("^[^*]*%*?[^*]*$", "*.example.com", true),
            ("^[^*]*%*?[^*]*$", "*.*.com", false),
            ("^%*%.", "*.example.com", true),
            ("%.%*$", "example.*", true),
            ("^[^*]*$", "example.*", false),
            ("//", "/a//b", true),
            ("//", "/a/b", false),
            ("^[Hh][Oo][Ss][Tt]$", "HoSt", true),
            ("^header$", "header", true),
            ("^header$", "headers", false),
            ("^[a-z][a-z%d-]-[a-z%d]+$", "my-vault1", true),
            ("^[a-z][a-z%d-]-[a-z%d]+$", "my-", false),
            ("^%d+[%.%d]*$", "1.2.3", true),
            ("^/", "/x", true),
            ("^~/", "~/x", true),
            ("%.%.", "1..2", true),
        ];
        for (p, v, want) in cases {
            assert_eq!(LuaPattern::new(*p).is_match(v), *want, "{p} on {v}");
        }
    }

    #[test]
    fn pretty_compact_sorts_keys_and_prints_null() {
        let v =
            json!({"service": {"id": "x"}, "name": "basic-auth", "consumer": null, "route": null});
        assert_eq!(
            pretty_compact(&v),
            r#"{consumer=null,name="basic-auth",route=null,service={id="x"}}"#
        );
        assert_eq!(pretty_compact(&json!({"a-b": 1})), r#"{["a-b"]=1}"#);
    }

    #[test]
    fn lua_numbers() {
        assert_eq!(lua_float(5.0), "5");
        assert_eq!(lua_float(0.5), "0.5");
        assert_eq!(lua_float(1.25), "1.25");
    }
}
