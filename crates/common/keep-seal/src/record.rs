//! Authenticated, sequence-numbered records from the Keep to the tenant.
//!
//! Wire: `seq: u64 LE`, `kind: u8`, ChaCha20Poly1305 ciphertext (nonce from `seq`,
//! AAD over `seq` and `kind`). Sequence 0 is the receipt; the exit report is last.

use serde::{Deserialize, Serialize};

use crate::SealError;
use crate::session::Session;

/// What a record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// JSON [`Receipt`]: state 3 reached.
    Receipt = 0,
    Stdout = 1,
    Stderr = 2,
    /// JSON exit report (`keep_wire::ExitReport`); always the last record.
    Exit = 3,
    /// JSON `{"message": ...}`: the Keep refused the payload after opening it
    /// (e.g. workload digest mismatch); the last record.
    Refused = 4,
}

impl RecordKind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Receipt,
            1 => Self::Stdout,
            2 => Self::Stderr,
            3 => Self::Exit,
            4 => Self::Refused,
            _ => return None,
        })
    }
}

/// The Keep's acknowledgement of the sealed payload (authenticated as record 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// SHA-384 (hex) of the sealed payload exactly as the Keep received it.
    pub payload_sha384: String,
    /// SHA-384 (hex) of the workload it checked and will run.
    pub workload_sha384: String,
}

/// One opened record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: u64,
    pub kind: RecordKind,
    pub data: Vec<u8>,
}

impl Session {
    /// Seals one record (Keep side).
    pub fn seal_record(
        &self,
        seq: u64,
        kind: RecordKind,
        data: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let ct = self.seal_raw(seq, kind as u8, data)?;
        let mut out = Vec::with_capacity(9 + ct.len());
        out.extend_from_slice(&seq.to_le_bytes());
        out.push(kind as u8);
        out.extend_from_slice(&ct);
        Ok(out)
    }
}

/// Tenant side: opens records in order and refuses gaps, repeats and trailers.
pub struct RecordReader {
    session: Session,
    next: u64,
    ended: bool,
}

impl RecordReader {
    pub fn new(session: Session) -> Self {
        Self {
            session,
            next: 0,
            ended: false,
        }
    }

    /// Whether the last record (exit or refusal) was read.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Opens the next record.
    pub fn open(&mut self, wire: &[u8]) -> Result<Record, SealError> {
        let (seq, kind, sealed) = next_record(wire, self.next, self.ended)?;
        let kind = RecordKind::from_u8(kind)
            .ok_or_else(|| SealError::RecordMalformed(format!("unknown kind {kind}")))?;
        let data = self.session.open_raw(seq, kind as u8, sealed)?;
        if (seq == 0) != (kind == RecordKind::Receipt) && kind != RecordKind::Refused {
            return Err(SealError::RecordMalformed(
                "the receipt must be record 0".into(),
            ));
        }
        self.next += 1;
        if matches!(kind, RecordKind::Exit | RecordKind::Refused) {
            self.ended = true;
        }
        Ok(Record { seq, kind, data })
    }
}

/// Splits a record on the wire (`seq` u64 LE, `kind` u8, ciphertext) and checks that
/// it is the one expected next: shared by output and input records.
pub(crate) fn next_record(
    wire: &[u8],
    expected: u64,
    ended: bool,
) -> Result<(u64, u8, &[u8]), SealError> {
    if ended {
        return Err(SealError::AfterExit);
    }
    let (Some(seq), Some(&kind), Some(sealed)) = (wire.get(..8), wire.get(8), wire.get(9..)) else {
        return Err(SealError::RecordMalformed(format!("{} bytes", wire.len())));
    };
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(seq);
    let seq = u64::from_le_bytes(bytes);
    if seq != expected {
        return Err(SealError::RecordOrder { expected, got: seq });
    }
    Ok((seq, kind, sealed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeepKey, Payload, SealedManifest, seal};

    fn setup() -> (Session, Session, Vec<u8>, [u8; 48]) {
        let key = KeepKey::generate().unwrap();
        let rd = [9u8; 48];
        let payload = Payload {
            manifest: SealedManifest {
                workload_sha384: "ab".into(),
                ..Default::default()
            },
            workload: b"\0asm....".to_vec(),
        };
        let (sealed, tenant) = seal(&key.public_key(), &rd, &payload).unwrap();
        let (opened, keep) = key.open(&sealed, &rd).unwrap();
        assert_eq!(opened, payload);
        (tenant, keep, sealed, rd)
    }

    #[test]
    fn sealed_payload_is_bound_and_tamper_evident() {
        let key = KeepKey::generate().unwrap();
        let rd = [1u8; 48];
        let payload = Payload {
            manifest: SealedManifest::default(),
            workload: vec![1, 2, 3],
        };
        let (sealed, _) = seal(&key.public_key(), &rd, &payload).unwrap();
        assert!(key.open(&sealed, &[2u8; 48]).is_err(), "other report_data");
        let mut t = sealed.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert_eq!(key.open(&t, &rd).err(), Some(SealError::Open));
        assert_eq!(
            key.open(&sealed[..sealed.len() - 1], &rd).err(),
            Some(SealError::Open)
        );
        assert_eq!(key.open(&sealed[..10], &rd).err(), Some(SealError::Open));
        let other = KeepKey::generate().unwrap();
        assert_eq!(other.open(&sealed, &rd).err(), Some(SealError::Open));
    }

    #[test]
    fn records_in_order_only() {
        let (tenant, keep, _, _) = setup();
        let r0 = keep.seal_record(0, RecordKind::Receipt, b"{}").unwrap();
        let r1 = keep.seal_record(1, RecordKind::Stdout, b"hi").unwrap();
        let r2 = keep.seal_record(2, RecordKind::Exit, b"{}").unwrap();
        let mut reader = RecordReader::new(tenant);
        assert_eq!(reader.open(&r0).unwrap().kind, RecordKind::Receipt);
        assert!(matches!(
            reader.open(&r2),
            Err(SealError::RecordOrder { .. })
        ));
        assert!(matches!(
            reader.open(&r0),
            Err(SealError::RecordOrder { .. })
        ));
        assert_eq!(reader.open(&r1).unwrap().data, b"hi");
        let mut bad = r2.clone();
        bad[8] = RecordKind::Stdout as u8;
        assert!(matches!(reader.open(&bad), Err(SealError::RecordAuth(2))));
        assert!(reader.open(&r2).is_ok());
        assert!(reader.ended());
        assert_eq!(reader.open(&r2).err(), Some(SealError::AfterExit));
    }
}
