//! Arbitrary bytes as the certificates and CRLs that arrive with evidence: DER, PEM
//! chains and hex CRLs, then every accessor and check a verifier runs on them.
//!
//! cd fuzz && cargo +nightly fuzz run x509

#![no_main]

use keep_verifier::UnixTime;
use keep_verifier::pki::{Cert, Crl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Cert::from_der(data) {
        let _ = (c.subject_name(), c.serial(), c.public_key_algorithm(), c.signature_algorithm());
        let _ = c.check_valid_at(UnixTime(1_700_000_000));
        let _ = c.verify_issued_by(&c, None);
        let _ = c.extension("1.3.6.1.4.1.3704.1.4");
    }
    if let Ok(chain) = Cert::chain_from_pem_or_der(data) {
        let _ = chain.iter().map(|c| c.subject_name()).count();
    }
    if let Ok(chain) = Cert::chain_from_pem(data) {
        for pair in chain.windows(2) {
            let _ = pair[0].verify_issued_by(&pair[1], None);
        }
    }
    if let Ok(crl) = Crl::from_any(data) {
        let _ = (crl.issuer_name(), crl.revoked_count(), crl.check_valid_at(UnixTime(0)));
        if let Ok(root) = keep_verifier::roots::intel_sgx_root() {
            let _ = crl.verify_issued_by(&root, None);
            let _ = crl.revokes(&root);
        }
    }
});
