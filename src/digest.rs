//! SHA-256 (the `sha2` crate, RustCrypto's), for the digests thpbench records and checks:
//! a kernel config's, a guest's result frame, the kernel build cache's keys. A leaf.

use sha2::{Digest, Sha256};

/// The SHA-256 of `data`, as 64 lower-case hex digits (what `sha256sum` prints).
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_vectors() {
        assert_eq!(
            super::sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
