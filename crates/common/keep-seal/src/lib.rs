//! `keep-seal`: the end-to-end protocol between a tenant and the exec inside a Keep,
//! which the host relays but cannot read or forge.
//!
//! **Trusts:** nothing it receives. Every byte from the other end arrives through the
//! host and is parsed with bounded sizes; cryptographic checks decide.
//! **Used by:** the tenant client (`keep deploy`) and the exec. Never by the host.
//!
//! Keys and messages (see `docs/architecture.md`, "Attested deployment"):
//!
//! - The exec derives an X25519 HPKE key pair inside the Keep from 32 fresh random
//!   bytes ([`KeepKey`]); the private key never leaves it.
//! - Evidence binds `report_data = SHA-384(nonce || public key || measurement)`
//!   ([`report_data`]): nonce 32 bytes from the tenant, public key 32 bytes,
//!   measurement 48 bytes (SHA-384 of the exec).
//! - The tenant seals the payload ([`Payload`]: manifest, secrets, workload) with HPKE
//!   base mode, suite X25519-HKDF-SHA256 / HKDF-SHA256 / ChaCha20Poly1305, `info =
//!   "keep/v1 payload" || report_data`, so it opens only in the attested Keep.
//!   Wire: `enc (32 bytes) || ciphertext`.
//! - Both ends export a 32-byte record key from the HPKE context (exporter context
//!   "keep/v1 records"). Every message from the Keep to the tenant is a [`Record`]
//!   sealed with ChaCha20Poly1305 under that key: receipt (seq 0), stdout and stderr
//!   chunks, and the exit report (last). The nonce is the sequence number and the AAD
//!   holds sequence and kind, so a host that drops, reorders, replays or truncates
//!   records is detected ([`RecordReader`]).
//! - The workload's stdin goes the other way as input records ([`InputSealer`],
//!   [`InputReader`]) under a second exported key ("keep/v1 input"), in order, ending
//!   with an end-of-input record.

mod input;
mod payload;
mod record;
mod session;

pub use input::{Input, InputReader, InputSealer};
pub use payload::{Payload, SealedManifest, Secret, SecretDelivery};
pub use record::{Receipt, Record, RecordKind, RecordReader};
pub use session::{KeepKey, Session, seal};

use sha2::{Digest, Sha384};
use thiserror::Error;

/// Length of the tenant's nonce.
pub const NONCE_LEN: usize = 32;
/// Length of the Keep's public key (X25519).
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of a measurement and of report_data (SHA-384).
pub const DIGEST_LEN: usize = 48;
/// The HPKE suite, as shown to people.
pub const SUITE: &str = "HPKE base X25519-HKDF-SHA256 / HKDF-SHA256 / ChaCha20Poly1305";

/// Everything that can go wrong in the protocol.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SealError {
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    #[error("bad public key: {0}")]
    PublicKey(String),
    #[error("sealing failed: {0}")]
    Seal(String),
    #[error(
        "the sealed payload does not open with this Keep's key (tampered, truncated or sealed to another Keep)"
    )]
    Open,
    #[error("the payload is malformed: {0}")]
    Malformed(String),
    #[error("record {0} does not authenticate (tampered, or from another session)")]
    RecordAuth(u64),
    #[error(
        "record out of order: expected sequence {expected}, got {got} (dropped, reordered or replayed by the host)"
    )]
    RecordOrder { expected: u64, got: u64 },
    #[error("record is malformed: {0}")]
    RecordMalformed(String),
    #[error("a record arrived after the exit report")]
    AfterExit,
}

/// `SHA-384(nonce || public key || measurement)`: what the evidence must carry.
pub fn report_data(
    nonce: &[u8; NONCE_LEN],
    public_key: &[u8; PUBLIC_KEY_LEN],
    measurement: &[u8; DIGEST_LEN],
) -> [u8; DIGEST_LEN] {
    let mut h = Sha384::new();
    h.update(nonce);
    h.update(public_key);
    h.update(measurement);
    h.finalize().into()
}

/// SHA-384 of bytes.
pub fn sha384(bytes: &[u8]) -> [u8; DIGEST_LEN] {
    Sha384::digest(bytes).into()
}

/// Fresh random bytes from the operating system.
pub fn random<const N: usize>() -> Result<[u8; N], SealError> {
    use rand_core::TryRngCore;
    let mut out = [0u8; N];
    rand_core::OsRng
        .try_fill_bytes(&mut out)
        .map_err(|e| SealError::Random(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_data_binds_every_input() {
        let (n, k, m) = ([1u8; 32], [2u8; 32], [3u8; 48]);
        let rd = report_data(&n, &k, &m);
        assert_ne!(rd, report_data(&[9; 32], &k, &m));
        assert_ne!(rd, report_data(&n, &[9; 32], &m));
        assert_ne!(rd, report_data(&n, &k, &[9; 48]));
        let mut concat = Vec::new();
        concat.extend_from_slice(&n);
        concat.extend_from_slice(&k);
        concat.extend_from_slice(&m);
        assert_eq!(rd, sha384(&concat));
    }

    #[test]
    fn garbage_records_are_errors_not_panics() {
        let key = KeepKey::generate().unwrap();
        let rd = [0u8; 48];
        let payload = Payload {
            manifest: SealedManifest::default(),
            workload: Vec::new(),
        };
        let (_, session) = seal(&key.public_key(), &rd, &payload).unwrap();
        let mut reader = RecordReader::new(session);
        for len in [0usize, 1, 8, 9, 20, 100] {
            let junk = vec![0u8; len];
            assert!(reader.open(&junk).is_err());
        }
        assert!(
            reader.open(&[0, 0, 0, 0, 0, 0, 0, 0, 77]).is_err(),
            "unknown kind"
        );
    }
}
