//! Vault references (`{vault://prefix/secret}`): recognised so that referenceable fields accept them.

/// Whether a string looks like a vault reference (`kong.vault.is_reference`).
pub fn is_reference(s: &str) -> bool {
    s.len() >= 10 && s.starts_with("{vault://") && s.ends_with('}')
}
