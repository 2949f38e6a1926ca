//! Random values: generated credentials and keys.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};

/// Fills `buf` from the operating system's CSPRNG.
pub fn fill(buf: &mut [u8]) {
    // SystemRandom only fails when the OS has no entropy source at all, which would make the
    // process unable to do TLS either; failing loudly is the only sane reaction.
    SystemRandom::new().fill(buf).expect("the operating system's random source failed");
}

/// Kong's `random_string()`: 32 alphanumeric characters from 24 random bytes.
pub fn random_string() -> String {
    let mut bytes = [0u8; 24];
    fill(&mut bytes);
    let mut extra = [0u8; 32];
    fill(&mut extra);
    STANDARD_NO_PAD
        .encode(bytes)
        .bytes()
        .zip(extra)
        .map(|(b, r)| match b {
            b'/' => (b'A' + r % 26) as char,
            b'+' => (b'a' + r % 26) as char,
            other => other as char,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_string_is_32_alphanumerics() {
        let s = super::random_string();
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s, super::random_string());
    }
}
