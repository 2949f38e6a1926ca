//! Pagination and tag filters with Kong's rules (`endpoints.lua extract_options`,
//! `dao/init.lua validate_options_value`, the postgres strategy's offsets).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use turnpike_core::errors::DaoError;
use turnpike_core::schema::Entity;

/// Kong's `max_page_size`.
pub const MAX_PAGE_SIZE: usize = 1000;
/// Kong's default page size.
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// `?tags=a,b` (all of them) or `?tags=a/b` (any of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagFilter {
    pub tags: Vec<String>,
    pub any: bool,
}

fn is_tag_byte(b: u8) -> bool {
    matches!(b, 0x20..=0x2B | 0x2D | 0x2E | 0x30..=0x7E | 0x80..=0xF4)
}

impl TagFilter {
    /// Parses the `tags` query argument, with Kong's errors.
    pub fn parse(raw: Option<&str>) -> Result<Self, DaoError> {
        let invalid = |msg: &str| DaoError::invalid_options(&json!({ "tags": msg }));
        let raw = match raw {
            None | Some("") => return Err(invalid("cannot be null")),
            Some(r) => r,
        };
        let split = |sep: u8| -> Option<Vec<String>> {
            let parts: Vec<&str> = raw.split(sep as char).collect();
            let last_empty = parts.last().is_some_and(|p| p.is_empty());
            let body =
                if last_empty && parts.len() > 1 { &parts[..parts.len() - 1] } else { &parts[..] };
            if body.iter().all(|p| !p.is_empty() && p.bytes().all(is_tag_byte)) {
                Some(body.iter().map(|s| (*s).to_owned()).collect())
            } else {
                None
            }
        };
        let (tags, any) = if let Some(t) = split(b',') {
            (t, false)
        } else if let Some(t) = split(b'/') {
            (t, true)
        } else {
            return Err(invalid("invalid filter syntax"));
        };
        if tags.len() > 5 {
            return Err(invalid("cannot query more than 5 tags"));
        }
        Ok(TagFilter { tags, any })
    }
}

/// A page request: size, opaque offset, and optional filters.
#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    pub size: usize,
    pub offset: Option<String>,
    pub tags: Option<TagFilter>,
    /// Only the children of one parent: (foreign field, parent id).
    pub foreign: Option<(String, String)>,
    /// Plain keyset pagination even where Kong lists differently (targets' `/all`).
    pub raw: bool,
}

impl PageRequest {
    pub fn new(size: usize) -> Self {
        Self { size, ..Self::default() }
    }

    /// Validates `?size=`: a number, an integer in 1..=1000.
    pub fn parse_size(raw: Option<&str>) -> Result<usize, DaoError> {
        let Some(raw) = raw else { return Ok(DEFAULT_PAGE_SIZE) };
        let n: f64 =
            lua_tonumber(raw).ok_or_else(|| DaoError::invalid_size("size must be a number"))?;
        if n.fract() != 0.0 || n < 1.0 || n > MAX_PAGE_SIZE as f64 {
            return Err(DaoError::invalid_size(format!(
                "size must be an integer between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        Ok(n as usize)
    }
}

/// Lua's `tonumber` for decimal and hexadecimal strings.
pub(crate) fn lua_tonumber(s: &str) -> Option<f64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok().map(|v| v as f64);
    }
    if t.is_empty() || t.eq_ignore_ascii_case("nan") || t.eq_ignore_ascii_case("inf") {
        return None;
    }
    t.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// One page of results.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub data: Vec<Entity>,
    /// The offset of the next page, when there is one.
    pub offset: Option<String>,
}

/// `encode_base64(cjson.encode(values), true)`: base64 without padding of a JSON array.
pub(crate) fn encode_offset(values: &[Value]) -> String {
    STANDARD_NO_PAD.encode(serde_json::to_vec(values).unwrap_or_default())
}

/// Decodes an offset into the JSON array it holds, with Kong's errors.
pub(crate) fn decode_offset(token: &str) -> Result<Vec<Value>, DaoError> {
    let bytes = STANDARD_NO_PAD
        .decode(token.trim_end_matches('='))
        .or_else(|_| STANDARD.decode(token))
        .map_err(|_| DaoError::invalid_offset(token, "bad base64 encoding"))?;
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|_| DaoError::invalid_offset(token, "bad json encoding"))?;
    match v {
        Value::Array(a) => Ok(a),
        other => Ok(vec![other]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_filters() {
        assert_eq!(
            TagFilter::parse(Some("a,b")).unwrap(),
            TagFilter { tags: vec!["a".into(), "b".into()], any: false }
        );
        assert_eq!(
            TagFilter::parse(Some("a/b")).unwrap(),
            TagFilter { tags: vec!["a".into(), "b".into()], any: true }
        );
        assert_eq!(TagFilter::parse(Some("a")).unwrap().tags, vec!["a".to_owned()]);
        assert_eq!(
            TagFilter::parse(Some("a,b/c")).unwrap_err().message,
            "invalid option (tags: invalid filter syntax)"
        );
        assert_eq!(
            TagFilter::parse(Some("a,b,c,d,e,f")).unwrap_err().message,
            "invalid option (tags: cannot query more than 5 tags)"
        );
        assert_eq!(
            TagFilter::parse(Some("")).unwrap_err().message,
            "invalid option (tags: cannot be null)"
        );
    }

    #[test]
    fn sizes_and_offsets() {
        assert_eq!(PageRequest::parse_size(None).unwrap(), 100);
        assert_eq!(PageRequest::parse_size(Some("1000")).unwrap(), 1000);
        assert_eq!(
            PageRequest::parse_size(Some("x")).unwrap_err().message,
            "size must be a number"
        );
        assert_eq!(
            PageRequest::parse_size(Some("0")).unwrap_err().message,
            "size must be an integer between 1 and 1000"
        );
        let o = encode_offset(&[json!("abc")]);
        assert!(!o.ends_with('='));
        assert_eq!(decode_offset(&o).unwrap(), vec![json!("abc")]);
        assert_eq!(
            decode_offset("!!").unwrap_err().message,
            "'!!' is not a valid offset: bad base64 encoding"
        );
    }
}
