//! A cache of signatures that already verified, so that a verifier that sees the same
//! certificate chain or collateral again only pays for the checks that change per
//! report. Only successes are cached, keyed by SHA-384 over the algorithm, the public
//! key, the signed bytes and the signature: a hit proves the exact same verification
//! passed before. Dates, revocation and every non-signature check still run each time.

use std::collections::HashSet;
use std::sync::Mutex;

/// Remembers verified signatures. Cheap to share between threads.
#[derive(Debug, Default)]
pub struct SignatureCache {
    seen: Mutex<HashSet<[u8; 48]>>,
    max_entries: usize,
}

impl SignatureCache {
    /// A cache that holds at most `max_entries` results (then it is cleared and refilled).
    pub fn new(max_entries: usize) -> Self {
        Self {
            seen: Mutex::new(HashSet::new()),
            max_entries,
        }
    }

    pub(crate) fn key(alg: &str, public_key: &[u8], message: &[u8], signature: &[u8]) -> [u8; 48] {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA384);
        for part in [alg.as_bytes(), public_key, message, signature] {
            ctx.update(&(part.len() as u64).to_le_bytes());
            ctx.update(part);
        }
        let mut out = [0u8; 48];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    pub(crate) fn contains(&self, key: &[u8; 48]) -> bool {
        self.seen.lock().map(|s| s.contains(key)).unwrap_or(false)
    }

    pub(crate) fn insert(&self, key: [u8; 48]) {
        if let Ok(mut s) = self.seen.lock() {
            if s.len() >= self.max_entries.max(1) {
                s.clear();
            }
            s.insert(key);
        }
    }

    /// Number of cached results.
    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
