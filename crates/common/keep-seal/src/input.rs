//! The tenant's input to the Keep (the workload's stdin): authenticated,
//! sequence-numbered records in the other direction.
//!
//! Wire: `seq: u64 LE`, `kind: u8` (0 data, 1 end of input), ChaCha20Poly1305
//! ciphertext under the session's input key (exporter context "keep/v1 input", not
//! the records' key), nonce `0^4 || seq BE`, AAD `"keep/v1 input " || seq BE || kind`.
//! The Keep accepts 0, 1, 2... and nothing after the end: a host that drops,
//! reorders, replays, forges or truncates input is detected.

use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::SealError;
use crate::session::Session;

const DATA: u8 = 0;
const END: u8 = 1;

fn cipher(key: &[u8; 32]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(Key::from_slice(key))
}

fn nonce(seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&seq.to_be_bytes());
    n
}

fn aad(seq: u64, kind: u8) -> [u8; 23] {
    let mut aad = [0u8; 23];
    aad[..14].copy_from_slice(b"keep/v1 input ");
    aad[14..22].copy_from_slice(&seq.to_be_bytes());
    aad[22] = kind;
    aad
}

/// What one input record carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Data(Vec<u8>),
    /// End of input: the workload's stdin reaches EOF.
    End,
}

/// Tenant side: seals the workload's stdin in order.
pub struct InputSealer {
    key: [u8; 32],
    next: u64,
    ended: bool,
}

impl InputSealer {
    fn seal(&mut self, kind: u8, data: &[u8]) -> Result<Vec<u8>, SealError> {
        if self.ended {
            return Err(SealError::AfterExit);
        }
        let seq = self.next;
        let ct = cipher(&self.key)
            .encrypt(
                Nonce::from_slice(&nonce(seq)),
                AeadPayload {
                    msg: data,
                    aad: &aad(seq, kind),
                },
            )
            .map_err(|e| SealError::Seal(e.to_string()))?;
        self.next += 1;
        self.ended = kind == END;
        let mut out = Vec::with_capacity(9 + ct.len());
        out.extend_from_slice(&seq.to_le_bytes());
        out.push(kind);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Seals a chunk of input.
    pub fn data(&mut self, data: &[u8]) -> Result<Vec<u8>, SealError> {
        self.seal(DATA, data)
    }

    /// Seals the end of input (the last record).
    pub fn end(&mut self) -> Result<Vec<u8>, SealError> {
        self.seal(END, b"")
    }
}

/// Keep side: opens input records in order; nothing after the end.
pub struct InputReader {
    key: [u8; 32],
    next: u64,
    ended: bool,
}

impl InputReader {
    /// Opens the next record.
    pub fn open(&mut self, wire: &[u8]) -> Result<Input, SealError> {
        let (seq, kind, sealed) = crate::record::next_record(wire, self.next, self.ended)?;
        if kind != DATA && kind != END {
            return Err(SealError::RecordMalformed(format!("unknown kind {kind}")));
        }
        let data = cipher(&self.key)
            .decrypt(
                Nonce::from_slice(&nonce(seq)),
                AeadPayload {
                    msg: sealed,
                    aad: &aad(seq, kind),
                },
            )
            .map_err(|_| SealError::RecordAuth(seq))?;
        self.next += 1;
        if kind == END {
            self.ended = true;
            return Ok(Input::End);
        }
        Ok(Input::Data(data))
    }
}

impl Session {
    /// The tenant's sealer for the workload's stdin.
    pub fn input_sealer(&self) -> InputSealer {
        InputSealer {
            key: self.input_key,
            next: 0,
            ended: false,
        }
    }

    /// The Keep's reader for the tenant's input.
    pub fn input_reader(&self) -> InputReader {
        InputReader {
            key: self.input_key,
            next: 0,
            ended: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeepKey, Payload, RecordKind, RecordReader, SealedManifest, seal};

    fn sessions() -> (Session, Session) {
        let key = KeepKey::generate().unwrap();
        let rd = [7u8; 48];
        let payload = Payload {
            manifest: SealedManifest::default(),
            workload: vec![0],
        };
        let (sealed, tenant) = seal(&key.public_key(), &rd, &payload).unwrap();
        let (_, keep) = key.open(&sealed, &rd).unwrap();
        (tenant, keep)
    }

    #[test]
    fn input_in_order_until_the_end_only() {
        let (tenant, keep) = sessions();
        let mut w = tenant.input_sealer();
        let r0 = w.data(b"hello ").unwrap();
        let r1 = w.data(b"world").unwrap();
        let end = w.end().unwrap();
        assert!(w.data(b"more").is_err(), "nothing after the end");
        let mut r = keep.input_reader();
        assert!(
            matches!(r.open(&r1), Err(SealError::RecordOrder { .. })),
            "dropped"
        );
        assert_eq!(r.open(&r0).unwrap(), Input::Data(b"hello ".to_vec()));
        assert!(
            matches!(r.open(&r0), Err(SealError::RecordOrder { .. })),
            "replayed"
        );
        let mut forged = r1.clone();
        forged[12] ^= 1;
        assert_eq!(r.open(&forged), Err(SealError::RecordAuth(1)));
        let mut as_end = r1.clone();
        as_end[8] = END;
        assert_eq!(
            r.open(&as_end),
            Err(SealError::RecordAuth(1)),
            "kind is authenticated"
        );
        assert_eq!(r.open(&r1).unwrap(), Input::Data(b"world".to_vec()));
        assert_eq!(r.open(&end).unwrap(), Input::End);
        assert_eq!(r.open(&end), Err(SealError::AfterExit));
        for len in [0usize, 1, 8, 9, 30] {
            assert!(keep.input_reader().open(&vec![0u8; len]).is_err());
        }
    }

    #[test]
    fn input_and_output_keys_differ() {
        let (tenant, keep) = sessions();
        // An input record reflected back as output, and the reverse, do not open.
        let input = tenant.input_sealer().data(b"x").unwrap();
        let mut reader = RecordReader::new(sessions().0);
        assert!(reader.open(&input).is_err());
        let mut reader = RecordReader::new(tenant);
        let mut as_output = input.clone();
        as_output[8] = RecordKind::Receipt as u8;
        assert!(reader.open(&as_output).is_err());
        let output = keep.seal_record(0, RecordKind::Stdout, b"x").unwrap();
        let mut as_input = output.clone();
        as_input[8] = DATA;
        assert!(keep.input_reader().open(&as_input).is_err());
    }
}
