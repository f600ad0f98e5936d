//! The Keep's key pair, sealing to it, and the session both ends share afterwards.

use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hpke::aead::ChaCha20Poly1305 as HpkeAead;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};

use crate::payload::Payload;
use crate::{DIGEST_LEN, PUBLIC_KEY_LEN, SealError};

type Kem = X25519HkdfSha256;
const ENC_LEN: usize = 32;
const PAYLOAD_INFO: &[u8] = b"keep/v1 payload";
const RECORD_EXPORT: &[u8] = b"keep/v1 records";
const INPUT_EXPORT: &[u8] = b"keep/v1 input";

fn info(report_data: &[u8; DIGEST_LEN]) -> Vec<u8> {
    let mut info = PAYLOAD_INFO.to_vec();
    info.extend_from_slice(report_data);
    info
}

/// The Keep's HPKE key pair; the private half never leaves the exec.
pub struct KeepKey {
    private: <Kem as hpke::Kem>::PrivateKey,
    public: [u8; PUBLIC_KEY_LEN],
}

impl KeepKey {
    /// A fresh key pair from 32 random bytes.
    pub fn generate() -> Result<Self, SealError> {
        let ikm = crate::random::<32>()?;
        let (private, public) = Kem::derive_keypair(&ikm);
        let mut pk = [0u8; PUBLIC_KEY_LEN];
        pk.copy_from_slice(&public.to_bytes());
        Ok(Self {
            private,
            public: pk,
        })
    }

    /// The public key, as bound in the evidence.
    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.public
    }

    /// Opens a sealed payload bound to `report_data`; returns it and the session.
    pub fn open(
        &self,
        sealed: &[u8],
        report_data: &[u8; DIGEST_LEN],
    ) -> Result<(Payload, Session), SealError> {
        if sealed.len() < ENC_LEN {
            return Err(SealError::Open);
        }
        let (enc, ct) = sealed.split_at(ENC_LEN);
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| SealError::Open)?;
        let mut ctx = hpke::setup_receiver::<HpkeAead, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.private,
            &enc,
            &info(report_data),
        )
        .map_err(|_| SealError::Open)?;
        let plain = ctx.open(ct, b"").map_err(|_| SealError::Open)?;
        let mut key = [0u8; 32];
        ctx.export(RECORD_EXPORT, &mut key)
            .map_err(|_| SealError::Open)?;
        let mut input_key = [0u8; 32];
        ctx.export(INPUT_EXPORT, &mut input_key)
            .map_err(|_| SealError::Open)?;
        let payload = Payload::decode(&plain)?;
        Ok((payload, Session { key, input_key }))
    }
}

/// Seals a payload to the Keep's public key, bound to the attested report_data.
/// Returns the sealed bytes and the session for the records that come back.
pub fn seal(
    public_key: &[u8; PUBLIC_KEY_LEN],
    report_data: &[u8; DIGEST_LEN],
    payload: &Payload,
) -> Result<(Vec<u8>, Session), SealError> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(public_key)
        .map_err(|e| SealError::PublicKey(e.to_string()))?;
    let mut rng = rand_core::UnwrapErr(rand_core::OsRng);
    let (enc, mut ctx) = hpke::setup_sender::<HpkeAead, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &pk,
        &info(report_data),
        &mut rng,
    )
    .map_err(|e| SealError::Seal(e.to_string()))?;
    let plain = payload.encode()?;
    let ct = ctx
        .seal(&plain, b"")
        .map_err(|e| SealError::Seal(e.to_string()))?;
    let mut key = [0u8; 32];
    ctx.export(RECORD_EXPORT, &mut key)
        .map_err(|e| SealError::Seal(e.to_string()))?;
    let mut input_key = [0u8; 32];
    ctx.export(INPUT_EXPORT, &mut input_key)
        .map_err(|e| SealError::Seal(e.to_string()))?;
    let mut out = enc.to_bytes().to_vec();
    out.extend_from_slice(&ct);
    Ok((out, Session { key, input_key }))
}

/// The keys both ends hold after sealing / opening: one for records from the Keep,
/// one for the tenant's input to the Keep (two exporter contexts, so the two
/// directions never share a key and nonce).
pub struct Session {
    key: [u8; 32],
    pub(crate) input_key: [u8; 32],
}

impl Session {
    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.key))
    }

    fn nonce(seq: u64) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&seq.to_be_bytes());
        n
    }

    fn aad(seq: u64, kind: u8) -> [u8; 24] {
        let mut aad = [0u8; 24];
        aad[..15].copy_from_slice(b"keep/v1 record ");
        aad[15..23].copy_from_slice(&seq.to_be_bytes());
        aad[23] = kind;
        aad
    }

    pub(crate) fn seal_raw(&self, seq: u64, kind: u8, data: &[u8]) -> Result<Vec<u8>, SealError> {
        self.cipher()
            .encrypt(
                Nonce::from_slice(&Self::nonce(seq)),
                AeadPayload {
                    msg: data,
                    aad: &Self::aad(seq, kind),
                },
            )
            .map_err(|e| SealError::Seal(e.to_string()))
    }

    pub(crate) fn open_raw(&self, seq: u64, kind: u8, ct: &[u8]) -> Result<Vec<u8>, SealError> {
        self.cipher()
            .decrypt(
                Nonce::from_slice(&Self::nonce(seq)),
                AeadPayload {
                    msg: ct,
                    aad: &Self::aad(seq, kind),
                },
            )
            .map_err(|_| SealError::RecordAuth(seq))
    }
}
