//! The launch digest: SHA-384 over the layers in load order (shim, payload, boot
//! parameters), each folded in as
//! `D = SHA-384(D || tag || len as u64 LE || SHA-384(layer))`, starting from 48 zero
//! bytes. On SEV-SNP/TDX this would be the value the platform measures; on plain KVM
//! it is computed by the (untrusted) host and only describes what was loaded.

use sha2::{Digest, Sha384};

pub const LAYERS: [&str; 3] = ["shim", "payload", "boot"];

/// Digest of the launch, from the three layers' bytes.
pub fn launch_digest(shim: &[u8], payload: &[u8], boot: &[u8]) -> [u8; 48] {
    let layer = |b: &[u8]| (b.len() as u64, sha384(b));
    fold([layer(shim), layer(payload), layer(boot)])
}

/// SHA-384 of some bytes.
pub fn sha384(bytes: &[u8]) -> [u8; 48] {
    Sha384::digest(bytes).into()
}

/// Digest of the launch from each layer's length and SHA-384 (so a caller that
/// already knows a large layer's hash, e.g. the exec's from build time, need not
/// hash 29 MB again at every launch).
pub fn fold(layers: [(u64, [u8; 48]); 3]) -> [u8; 48] {
    let mut d = [0u8; 48];
    for (tag, (len, hash)) in LAYERS.iter().zip(layers) {
        let mut h = Sha384::new();
        h.update(d);
        h.update(tag.as_bytes());
        h.update(len.to_le_bytes());
        h.update(hash);
        d.copy_from_slice(&h.finalize());
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layer_changes_the_digest() {
        let base = launch_digest(b"s", b"p", b"b");
        assert_ne!(base, launch_digest(b"S", b"p", b"b"));
        assert_ne!(base, launch_digest(b"s", b"P", b"b"));
        assert_ne!(base, launch_digest(b"s", b"p", b"B"));
        // Moving bytes between layers changes it too.
        assert_ne!(
            launch_digest(b"sp", b"", b"b"),
            launch_digest(b"s", b"p", b"b")
        );
        assert_eq!(base, launch_digest(b"s", b"p", b"b"));
        let folded = fold([(1, sha384(b"s")), (1, sha384(b"p")), (1, sha384(b"b"))]);
        assert_eq!(base, folded);
        assert_ne!(
            base,
            fold([(1, sha384(b"s")), (2, sha384(b"p")), (1, sha384(b"b"))])
        );
    }
}
