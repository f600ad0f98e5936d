//! A cache of signatures that already verified, so that a verifier that sees the same
//! certificate chain or collateral again only pays for the checks that change per
//! report. Only successes are cached. An entry holds the exact algorithm, public key,
//! signed bytes and signature; a lookup finds candidates by the signature alone and
//! then compares every byte, so a hit proves the exact same verification passed
//! before, and costs a comparison instead of a hash over the (often large) message.
//! Dates, revocation and every non-signature check still run each time.
//!
//! It also remembers what parsed successfully (collateral documents, CRLs,
//! certificate chains), keyed by the kind of document and its exact bytes: parsing
//! is a pure function of the bytes, so a hit returns what parsing them again would.
//! Every check on the parsed values (signatures, dates, revocation, matching) still
//! runs on each verification.

use std::any::Any;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

/// One verified signature, stored whole.
#[derive(Debug)]
struct Entry {
    alg: &'static str,
    public_key: Box<[u8]>,
    message: Box<[u8]>,
}

/// One parsed document, with the exact bytes it was parsed from.
struct Parsed {
    bytes: Box<[u8]>,
    value: Arc<dyn Any + Send + Sync>,
}

impl std::fmt::Debug for Parsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parsed({} bytes)", self.bytes.len())
    }
}

/// Remembers verified signatures and parsed documents. Cheap to share between threads.
#[derive(Debug, Default)]
pub struct SignatureCache {
    /// Signature bytes -> the verifications that passed with that signature.
    seen: Mutex<HashMap<Box<[u8]>, Vec<Entry>>>,
    /// (kind, a hash of the length and both ends of the bytes) -> documents parsed.
    parsed: Mutex<HashMap<(&'static str, u64), Vec<Parsed>>>,
    max_entries: usize,
}

impl SignatureCache {
    /// A cache that holds at most `max_entries` results (then it is cleared and refilled).
    pub fn new(max_entries: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            parsed: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    /// Returns what `parse` made of exactly these bytes before, or parses them now
    /// and remembers a success. `kind` separates documents parsed into different
    /// types (a hit is only ever for the same `kind`, hence the same `T`).
    pub(crate) fn parsed<T: Send + Sync + 'static, E>(
        &self,
        kind: &'static str,
        bytes: &[u8],
        parse: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let key = (kind, bucket(bytes));
        if let Ok(parsed) = self.parsed.lock()
            && let Some(hit) = parsed
                .get(&key)
                .into_iter()
                .flatten()
                .find(|p| *p.bytes == *bytes)
            && let Ok(value) = Arc::clone(&hit.value).downcast::<T>()
        {
            return Ok(value);
        }
        let value = Arc::new(parse(bytes)?);
        if let Ok(mut parsed) = self.parsed.lock() {
            if parsed.len() >= self.max_entries.max(1) {
                parsed.clear();
            }
            parsed.entry(key).or_default().push(Parsed {
                bytes: bytes.into(),
                value: Arc::clone(&value) as Arc<dyn Any + Send + Sync>,
            });
        }
        Ok(value)
    }

    /// Whether exactly this verification passed before.
    pub(crate) fn contains(
        &self,
        alg: &'static str,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> bool {
        let Ok(seen) = self.seen.lock() else {
            return false;
        };
        seen.get(signature).is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e.alg == alg && *e.public_key == *public_key && *e.message == *message)
        })
    }

    /// Records a verification that passed.
    pub(crate) fn insert(
        &self,
        alg: &'static str,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= self.max_entries.max(1) {
                seen.clear();
            }
            seen.entry(signature.into()).or_default().push(Entry {
                alg,
                public_key: public_key.into(),
                message: message.into(),
            });
        }
    }

    /// Number of distinct cached signatures.
    pub fn len(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Parses through `cache` when there is one.
pub(crate) fn parse_with<T: Send + Sync + 'static, E>(
    cache: Option<&SignatureCache>,
    kind: &'static str,
    bytes: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<Arc<T>, E> {
    match cache {
        Some(c) => c.parsed(kind, bytes, parse),
        None => parse(bytes).map(Arc::new),
    }
}

/// A hash of the length and the first and last 64 bytes: enough to spread entries;
/// a hit is decided by comparing every byte.
fn bucket(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.len().hash(&mut h);
    bytes.get(..64).unwrap_or(bytes).hash(&mut h);
    bytes
        .get(bytes.len().saturating_sub(64)..)
        .unwrap_or(bytes)
        .hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_needs_every_byte_equal() {
        let c = SignatureCache::new(8);
        c.insert("a", b"key", b"message", b"sig");
        assert!(c.contains("a", b"key", b"message", b"sig"));
        assert!(!c.contains("b", b"key", b"message", b"sig"));
        assert!(!c.contains("a", b"kez", b"message", b"sig"));
        assert!(!c.contains("a", b"key", b"messagf", b"sig"));
        assert!(!c.contains("a", b"key", b"message", b"sih"));
        assert!(!c.contains("a", b"key", b"message!", b"sig"));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn parsed_documents_are_reused_only_for_identical_bytes() {
        let c = SignatureCache::new(8);
        let calls = std::cell::Cell::new(0);
        let parse = |b: &[u8]| -> Result<usize, ()> {
            calls.set(calls.get() + 1);
            Ok(b.len())
        };
        let long = vec![7u8; 300];
        let mut other = long.clone();
        other[150] = 8; // same length and ends: same bucket, different bytes
        assert_eq!(*c.parsed("len", &long, parse).unwrap(), 300);
        assert_eq!(*c.parsed("len", &long, parse).unwrap(), 300);
        assert_eq!(calls.get(), 1);
        assert_eq!(*c.parsed("len", &other, parse).unwrap(), 300);
        assert_eq!(calls.get(), 2);
        // Another kind never shares an entry, and failures are not remembered.
        assert!(c.parsed("fail", &long, |_| Err::<usize, ()>(())).is_err());
        assert!(c.parsed("fail", &long, |_| Err::<usize, ()>(())).is_err());
        let s = c
            .parsed("text", &long, |b| Ok::<_, ()>(format!("{}", b.len())))
            .unwrap();
        assert_eq!(*s, "300");
    }

    #[test]
    fn a_full_cache_starts_again() {
        let c = SignatureCache::new(2);
        c.insert("a", b"k", b"m1", b"s1");
        c.insert("a", b"k", b"m2", b"s2");
        c.insert("a", b"k", b"m3", b"s3");
        assert_eq!(c.len(), 1);
        assert!(c.contains("a", b"k", b"m3", b"s3"));
        assert!(!c.contains("a", b"k", b"m1", b"s1"));
    }
}
