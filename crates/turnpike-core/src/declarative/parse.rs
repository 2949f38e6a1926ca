//! Declarative text (YAML or JSON) to a JSON value, with bounded size and work.
//!
//! YAML anchors and aliases are expanded while deserializing; a budget on the number of
//! values built stops an alias bomb (a few hundred bytes that expand to billions of nodes)
//! long before it costs memory. serde_yaml's own cap on alias jumps is proportional to the
//! input and so still allows a large input to expand a hundredfold.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Input limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest input accepted, in bytes.
    pub max_bytes: usize,
    /// The most values (scalars, arrays and objects) the parsed document may hold.
    pub max_values: usize,
    /// The deepest nesting accepted.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_bytes: 32 << 20, max_values: 4_000_000, max_depth: 64 }
    }
}

/// Why a text is not a declarative document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("declarative config is too large: {size} bytes (the limit is {limit})")]
    TooLarge { size: usize, limit: usize },
    #[error("{0}")]
    Syntax(String),
    #[error("declarative config has too many values (more than {0}); YAML aliases may expand it")]
    TooManyValues(usize),
    #[error("declarative config is nested too deeply (more than {0} levels)")]
    TooDeep(usize),
}

struct Budget {
    left: Cell<usize>,
    max_values: usize,
    max_depth: usize,
}

impl Budget {
    fn take<E: de::Error>(&self) -> Result<(), E> {
        let left = self.left.get();
        if left == 0 {
            return Err(E::custom(Budget::VALUES));
        }
        self.left.set(left - 1);
        Ok(())
    }

    const VALUES: &'static str = "\u{0}too many values";
    const DEPTH: &'static str = "\u{0}too deep";
}

struct Node<'b> {
    budget: &'b Budget,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML or JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.budget.take()?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.budget.take()?;
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.budget.take()?;
        if self.depth >= self.budget.max_depth {
            return Err(de::Error::custom(Budget::DEPTH));
        }
        let mut out = Vec::new();
        while let Some(v) =
            seq.next_element_seed(Node { budget: self.budget, depth: self.depth + 1 })?
        {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.budget.take()?;
        if self.depth >= self.budget.max_depth {
            return Err(de::Error::custom(Budget::DEPTH));
        }
        let mut out = Map::new();
        while let Some(k) =
            map.next_key_seed(Node { budget: self.budget, depth: self.depth + 1 })?
        {
            let key = match k {
                Value::String(s) => s,
                // YAML allows any scalar as a key; Kong's tables see their string form
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => "null".to_owned(),
                _ => return Err(de::Error::custom("a mapping key must be a scalar")),
            };
            let v = map.next_value_seed(Node { budget: self.budget, depth: self.depth + 1 })?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

fn classify(msg: String, budget: &Budget) -> ParseError {
    if msg.contains(Budget::VALUES) {
        ParseError::TooManyValues(budget.max_values)
    } else if msg.contains(Budget::DEPTH) {
        ParseError::TooDeep(budget.max_depth)
    } else {
        ParseError::Syntax(msg)
    }
}

/// Parses a declarative document: JSON when it starts with `{` (after whitespace), else YAML
/// (of which JSON is a subset anyway; the JSON parser is faster and gives JSON's messages).
pub fn parse(text: &[u8], limits: &Limits) -> Result<Value, ParseError> {
    if text.len() > limits.max_bytes {
        return Err(ParseError::TooLarge { size: text.len(), limit: limits.max_bytes });
    }
    let budget = Budget {
        left: Cell::new(limits.max_values),
        max_values: limits.max_values,
        max_depth: limits.max_depth,
    };
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let mut de = serde_json::Deserializer::from_slice(text);
        let v = Node { budget: &budget, depth: 0 }
            .deserialize(&mut de)
            .map_err(|e| classify(e.to_string(), &budget))?;
        de.end().map_err(|e| ParseError::Syntax(e.to_string()))?;
        return Ok(v);
    }
    let text = std::str::from_utf8(text).map_err(|e| ParseError::Syntax(e.to_string()))?;
    let de = serde_yaml::Deserializer::from_str(text);
    Node { budget: &budget, depth: 0 }.deserialize(de).map_err(|e| classify(e.to_string(), &budget))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json() {
        let l = Limits::default();
        let v = parse(b"_format_version: '3.0'\nservices:\n- name: a\n  port: 80\n", &l).unwrap();
        assert_eq!(v["services"][0]["port"], 80);
        let v = parse(br#" {"_format_version": "3.0"} "#, &l).unwrap();
        assert_eq!(v["_format_version"], "3.0");
        assert!(matches!(parse(b"a: [", &l), Err(ParseError::Syntax(_))));
    }

    #[test]
    fn alias_bombs_stop_early() {
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
                    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
                    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
                    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n\
                    i: [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
        let limits = Limits { max_values: 100_000, ..Limits::default() };
        let err = parse(bomb.as_bytes(), &limits).unwrap_err();
        assert!(matches!(err, ParseError::TooManyValues(_) | ParseError::Syntax(_)), "{err:?}");
    }

    #[test]
    fn size_and_depth_limits() {
        let limits = Limits { max_bytes: 10, ..Limits::default() };
        assert_eq!(
            parse(b"_format_version: '3.0'", &limits),
            Err(ParseError::TooLarge { size: 22, limit: 10 })
        );
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        let err = parse(format!("{{\"a\":{deep}}}").as_bytes(), &Limits::default()).unwrap_err();
        assert_eq!(err, ParseError::TooDeep(64));
        let deep_yaml = format!("a: {}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(deep_yaml.as_bytes(), &Limits::default()).is_err());
    }
}
