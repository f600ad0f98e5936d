//! What the tenant seals: the manifest (with the workload's digest and the
//! secrets) and the workload bytes.
//!
//! Plaintext layout: `manifest_len: u32 LE`, the manifest as JSON, the workload.

use serde::{Deserialize, Serialize};

use crate::SealError;

/// The largest manifest accepted (secrets included).
pub const MAX_MANIFEST: usize = 1 << 20;

/// The tenant's manifest as sealed to the Keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedManifest {
    /// `argv[0]`.
    pub program_name: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// SHA-384 (lowercase hex) of the workload the tenant means to run.
    pub workload_sha384: String,
    pub secrets: Vec<Secret>,
    /// Limits the tenant asks the exec to enforce.
    pub memory_bytes: Option<u64>,
    pub cpu_ms: Option<u64>,
}

/// One secret and how the workload receives it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    pub name: String,
    /// The value, hex-encoded.
    pub value_hex: String,
    pub delivery: SecretDelivery,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

/// How a secret reaches the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretDelivery {
    /// A file `/secrets/<name>` in a private directory of the Keep.
    File,
    /// An environment variable `<name>`.
    Env,
}

/// Manifest and workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub manifest: SealedManifest,
    pub workload: Vec<u8>,
}

impl Payload {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, SealError> {
        let m =
            serde_json::to_vec(&self.manifest).map_err(|e| SealError::Malformed(e.to_string()))?;
        if m.len() > MAX_MANIFEST {
            return Err(SealError::Malformed(format!(
                "manifest of {} bytes is over {MAX_MANIFEST}",
                m.len()
            )));
        }
        let mut out = Vec::with_capacity(4 + m.len() + self.workload.len());
        out.extend_from_slice(&(m.len() as u32).to_le_bytes());
        out.extend_from_slice(&m);
        out.extend_from_slice(&self.workload);
        Ok(out)
    }

    pub(crate) fn decode(plain: &[u8]) -> Result<Self, SealError> {
        let (len, rest) = plain
            .split_first_chunk::<4>()
            .ok_or_else(|| SealError::Malformed("shorter than its header".into()))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > MAX_MANIFEST || len > rest.len() {
            return Err(SealError::Malformed(format!(
                "manifest length {len} is out of bounds"
            )));
        }
        let (m, workload) = rest.split_at(len);
        let manifest: SealedManifest =
            serde_json::from_slice(m).map_err(|e| SealError::Malformed(e.to_string()))?;
        Ok(Self {
            manifest,
            workload: workload.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed_plaintexts_are_errors() {
        let p = Payload {
            manifest: SealedManifest {
                program_name: "w.wasm".into(),
                workload_sha384: "00".into(),
                ..Default::default()
            },
            workload: b"\0asm\x01\0\0\0".to_vec(),
        };
        let bytes = p.encode().unwrap();
        assert_eq!(Payload::decode(&bytes).unwrap(), p);
        for cut in 0..bytes.len().min(64) {
            assert!(Payload::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Payload::decode(&huge).is_err());
        let mut unknown = br#"{"program_name":"x","extra":1}"#.to_vec();
        let mut framed = (unknown.len() as u32).to_le_bytes().to_vec();
        framed.append(&mut unknown);
        assert!(Payload::decode(&framed).is_err(), "unknown fields refused");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let s = Secret {
            name: "api".into(),
            value_hex: hex::encode("CANARY"),
            delivery: SecretDelivery::File,
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains(&hex::encode("CANARY")), "{shown}");
    }
}
