//! The Keeps this agent runs, who owns them, and the trust state each has reached
//! as far as the host can tell.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use keep_host::AttestedKeep;
use serde::Serialize;

use crate::config::LimitsConfig;

/// Trust states of a deployment, as the host relays them. The host cannot check
/// any of them (only the tenant can); it records which messages it has relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustState {
    /// 1: an empty Keep exists and waits for a challenge.
    PreAttestation,
    /// 2 (from the host's view): evidence was relayed for the tenant to verify.
    EvidenceRelayed,
    /// 3 (from the host's view): the sealed payload was relayed and the Keep sent
    /// its first sealed record (the receipt).
    Provisioned,
    /// The Keep has ended.
    Ended,
}

/// One entry of a Keep's host-side log.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub unix_ms: u64,
    pub event: String,
}

/// Events kept per Keep.
const MAX_EVENTS: usize = 64;
/// Ended Keeps whose events are kept for `keep logs`.
const MAX_ENDED: usize = 256;

impl TrustState {
    pub fn name(self) -> &'static str {
        match self {
            Self::PreAttestation => "pre-attestation",
            Self::EvidenceRelayed => "evidence relayed (the tenant verifies it)",
            Self::Provisioned => "provisioned (sealed payload relayed, first sealed record seen)",
            Self::Ended => "ended",
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Self::PreAttestation => 1,
            Self::EvidenceRelayed => 2,
            Self::Provisioned => 3,
            Self::Ended => 4,
        }
    }
}

/// One Keep.
pub struct Entry {
    pub id: String,
    pub owner: usize,
    pub owner_name: String,
    pub limits: LimitsConfig,
    pub created: SystemTime,
    /// When it was created, for the challenge deadline.
    pub created_at: Instant,
    /// When its evidence was relayed, for the payload deadline.
    pub evidence_at: Mutex<Option<Instant>>,
    /// `process` or `kvm`.
    pub backend: &'static str,
    pub state: Mutex<TrustState>,
    pub keep: Mutex<AttestedKeep>,
    /// What the host saw happen to this Keep (never payload or output bytes).
    pub events: Mutex<Vec<Event>>,
    /// Set by the first challenge: one per Keep.
    pub challenged: std::sync::atomic::AtomicBool,
    /// Set by the first payload: one per Keep.
    pub provisioning: std::sync::atomic::AtomicBool,
    /// Set when the tenant opens the Keep's stdin: once per Keep.
    pub stdin_opened: std::sync::atomic::AtomicBool,
    /// Why the agent terminated the Keep, if it did (told to the tenant).
    pub terminated: Mutex<Option<String>>,
}

impl Entry {
    pub fn state(&self) -> TrustState {
        self.state.lock().map(|s| *s).unwrap_or(TrustState::Ended)
    }

    /// Records an event for `keep logs` (bounded).
    pub fn event(&self, what: String) {
        if let Ok(mut ev) = self.events.lock()
            && ev.len() < MAX_EVENTS
        {
            let unix_ms = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            ev.push(Event {
                unix_ms,
                event: what,
            });
        }
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    pub fn set_state(&self, s: TrustState) {
        if let Ok(mut st) = self.state.lock() {
            *st = s;
        }
        self.event(format!("state {} {}", s.number(), s.name()));
        tracing::info!(keep = %self.id, tenant = %self.owner_name, state = s.number(), name = ?s, "trust state");
    }

    pub fn view(&self) -> KeepView {
        KeepView {
            id: self.id.clone(),
            tenant: self.owner_name.clone(),
            state: self.state(),
            limits: self.limits,
            created_unix: self
                .created
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            backend: self.backend,
            attester: "insecure (no hardware root of trust)",
            // Not waited for: a Keep being ended holds its lock a moment.
            figures: self.keep.try_lock().ok().map(|k| k.figures()),
        }
    }
}

/// What the API shows of a Keep.
#[derive(Debug, Clone, Serialize)]
pub struct KeepView {
    pub id: String,
    pub tenant: String,
    pub state: TrustState,
    pub limits: LimitsConfig,
    pub created_unix: u64,
    pub backend: &'static str,
    pub attester: &'static str,
    /// What the host measures of the Keep's use, from the kernel (absent while
    /// the Keep is being ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub figures: Option<keep_host::KeepFigures>,
}

#[derive(Default)]
pub struct Registry {
    keeps: Mutex<HashMap<String, Arc<Entry>>>,
    /// Recently ended Keeps, oldest first, for their logs.
    ended: Mutex<std::collections::VecDeque<Arc<Entry>>>,
}

impl Registry {
    pub fn get(&self, id: &str) -> Option<Arc<Entry>> {
        self.keeps.lock().ok()?.get(id).cloned()
    }

    pub fn count(&self) -> usize {
        self.keeps.lock().map(|k| k.len()).unwrap_or(0)
    }

    pub fn count_owned(&self, owner: usize) -> usize {
        self.keeps
            .lock()
            .map(|k| k.values().filter(|e| e.owner == owner).count())
            .unwrap_or(0)
    }

    /// Inserts unless `max` Keeps exist (all) or `max_owned` for this owner.
    pub fn insert(&self, e: Arc<Entry>, max: usize, max_owned: usize) -> Result<(), String> {
        let mut k = self
            .keeps
            .lock()
            .map_err(|_| "registry poisoned".to_string())?;
        if k.len() >= max {
            return Err(format!("the host runs its maximum of {max} Keeps"));
        }
        if k.values().filter(|x| x.owner == e.owner).count() >= max_owned {
            return Err(format!("the tenant has its maximum of {max_owned} Keeps"));
        }
        k.insert(e.id.clone(), e);
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Entry>> {
        let e = self.keeps.lock().ok()?.remove(id)?;
        if let Ok(mut ended) = self.ended.lock() {
            if ended.len() >= MAX_ENDED {
                ended.pop_front();
            }
            ended.push_back(e.clone());
        }
        Some(e)
    }

    /// A running or recently ended Keep.
    pub fn get_any(&self, id: &str) -> Option<Arc<Entry>> {
        self.get(id)
            .or_else(|| self.ended.lock().ok()?.iter().find(|e| e.id == id).cloned())
    }

    pub fn all(&self) -> Vec<Arc<Entry>> {
        self.keeps
            .lock()
            .map(|k| k.values().cloned().collect())
            .unwrap_or_default()
    }
}
