//! Consumers as the request path sees them, and the table plugins look them up in.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

/// A consumer (`kong.client.get_consumer()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub id: String,
    pub username: Option<String>,
    pub custom_id: Option<String>,
}

/// The credential a request authenticated with (`kong.client.get_credential()`).
/// Its strings are shared (`Arc<str>`) so that a plugin can keep one per credential in its
/// table and hand out cheap clones per request.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: Arc<str>,
    /// What `X-Credential-Identifier` carries: the credential id for key-auth, the username
    /// for basic-auth and hmac-auth, the `key` for jwt.
    pub identifier: Arc<str>,
    pub consumer_id: Option<Arc<str>>,
}

impl Credential {
    pub fn new(id: &str, identifier: &str, consumer_id: Option<&str>) -> Self {
        Self {
            id: Arc::from(id),
            identifier: Arc::from(identifier),
            consumer_id: consumer_id.map(Arc::from),
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the identifier of a key-auth credential is its id, never the key itself
        f.debug_struct("Credential").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Every consumer of a configuration, by id and by username.
#[derive(Debug, Default)]
pub struct Consumers {
    by_id: HashMap<String, Arc<Consumer>>,
    by_username: HashMap<String, Arc<Consumer>>,
}

fn opt_str(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}

impl Consumers {
    /// Builds the table from consumer rows (Admin API JSON).
    pub fn from_rows(rows: &[Value]) -> Self {
        let mut t = Self::default();
        for r in rows {
            let Some(id) = opt_str(r, "id") else { continue };
            let c = Arc::new(Consumer {
                id: id.clone(),
                username: opt_str(r, "username"),
                custom_id: opt_str(r, "custom_id"),
            });
            if let Some(u) = &c.username {
                t.by_username.insert(u.clone(), c.clone());
            }
            t.by_id.insert(id, c);
        }
        t
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Consumer>> {
        self.by_id.get(id)
    }

    /// Kong's lookup of an `anonymous` setting: by id, then by username.
    pub fn by_id_or_username(&self, key: &str) -> Option<&Arc<Consumer>> {
        self.by_id.get(key).or_else(|| self.by_username.get(key))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
