//! What Kong's authentication plugins share: the anonymous consumer fallback ("logical OR"
//! between authentication plugins) and credential tables keyed by a digest of the secret.

use std::sync::Arc;

use ring::digest;
use serde_json::Value;
use turnpike_plugin_api::{Consumer, Consumers, Ctx, Exit, Phase};

/// A SHA-256 digest of a secret. Credentials are looked up by the digest of what the client
/// sent, so the table never compares secret bytes with data-dependent timing.
pub(crate) type SecretDigest = [u8; 32];

pub(crate) fn secret_digest(s: &[u8]) -> SecretDigest {
    let d = digest::digest(&digest::SHA256, s);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The consumer a credential row belongs to.
pub(crate) fn row_consumer(row: &Value, consumers: &Consumers) -> Option<Arc<Consumer>> {
    let id = row.get("consumer")?.get("id")?.as_str()?;
    consumers.get(id).cloned()
}

pub(crate) fn str_field<'a>(row: &'a Value, k: &str) -> Option<&'a str> {
    row.get(k).and_then(Value::as_str)
}

/// The end of an auth plugin's access phase when authentication failed: with `anonymous`
/// configured the request goes on as the anonymous consumer (Kong's `set_anonymous_consumer`),
/// otherwise the failure is the response.
pub(crate) fn fail(
    ctx: &mut Ctx<'_>,
    anonymous: Option<&str>,
    consumers: &Consumers,
    failure: Exit,
) -> Phase {
    let Some(anon) = anonymous else { return Err(failure) };
    match consumers.by_id_or_username(anon) {
        Some(c) => {
            ctx.authenticate(c.clone(), None);
            Ok(())
        }
        None => Err(Exit::error(
            500,
            format!("anonymous consumer {anon} is configured but doesn't exist"),
        )),
    }
}

/// Kong's auth plugins step aside when `anonymous` is set and an earlier plugin already
/// authenticated the request.
pub(crate) fn already_authenticated(ctx: &Ctx<'_>, anonymous: Option<&str>) -> bool {
    anonymous.is_some() && ctx.has_credential()
}

/// Deserializes a plugin config (validated by its schema, so a failure is a bug).
pub(crate) fn config<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
    T::deserialize(v).map_err(|e| format!("invalid config: {e}"))
}
