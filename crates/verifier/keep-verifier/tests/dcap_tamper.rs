//! Tampering with real quotes and their collateral: every change must make the
//! evidence not genuine, through the check that guards the changed bytes, and
//! malformed input must give a typed error, never a panic.

use keep_verifier::dcap::{self, Collateral, DcapError, SgxPolicy, TdxPolicy};
use keep_verifier::{Options, SignatureCache, UnixTime, Verdict, Verification};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors");

struct Case {
    name: &'static str,
    quote: Vec<u8>,
    collateral: Collateral,
    now: UnixTime,
}

fn case(name: &'static str, now: i64) -> Case {
    Case {
        name,
        quote: std::fs::read(format!("{VECTORS}/{name}/quote.bin")).unwrap(),
        collateral: Collateral::from_json(
            &std::fs::read(format!("{VECTORS}/{name}/collateral.json")).unwrap(),
        )
        .unwrap(),
        now: UnixTime(now),
    }
}

fn tdx() -> Case {
    case("tdx/dcap-qvl-uptodate", 1752919234)
}

fn sgx() -> Case {
    case("sgx/dcap-qvl-config-sw-hardening", 1752919277)
}

fn verify(
    quote: &[u8],
    c: Option<&Collateral>,
    now: UnixTime,
    cache: &SignatureCache,
) -> Verification {
    let opts = Options {
        cache: Some(cache),
        ..Options::default()
    };
    dcap::verify(
        quote,
        c,
        &TdxPolicy::default(),
        &SgxPolicy::default(),
        now,
        opts,
    )
}

/// Where the parts of a quote's signature data are.
struct Layout {
    signed: std::ops::Range<usize>,
    signature: std::ops::Range<usize>,
    key: std::ops::Range<usize>,
    qe_report: std::ops::Range<usize>,
    qe_report_signature: std::ops::Range<usize>,
    qe_auth_data: std::ops::Range<usize>,
}

fn layout(bytes: &[u8]) -> Layout {
    let q = dcap::Quote::parse(bytes).unwrap();
    let signed = 0..q.signed_bytes().len();
    let sig = signed.end + 4;
    let key = sig + 64;
    let qe = key + 64 + if q.header.version == 3 { 0 } else { 6 };
    let qe_sig = qe + 384;
    let auth = qe_sig + 64 + 2;
    let l = Layout {
        signed,
        signature: sig..key,
        key: key..key + 64,
        qe_report: qe..qe_sig,
        qe_report_signature: qe_sig..qe_sig + 64,
        qe_auth_data: auth..auth + q.qe_auth_data.len(),
    };
    assert_eq!(bytes[l.signature.clone()], q.signature);
    assert_eq!(bytes[l.key.clone()], q.attestation_key);
    assert_eq!(bytes[l.qe_report.clone()], q.qe_report_raw);
    assert_eq!(bytes[l.qe_report_signature.clone()], q.qe_report_signature);
    assert_eq!(bytes[l.qe_auth_data.clone()], q.qe_auth_data[..]);
    l
}

/// Flips each bit `step` apart in `range` (on two threads) and checks every result
/// with `detected`; returns (flips, flips that did not even parse).
fn flip_bits(
    c: &Case,
    range: std::ops::Range<usize>,
    step: usize,
    collateral: Option<&Collateral>,
    cache: &SignatureCache,
    detected: fn(&Verification) -> bool,
) -> (usize, usize) {
    let bits: Vec<usize> = (range.start * 8..range.end * 8).step_by(step).collect();
    let run = |part: &[usize]| {
        let mut parse_errors = 0;
        for &bit in part {
            let mut q = c.quote.clone();
            q[bit / 8] ^= 1 << (bit % 8);
            let v = verify(&q, collateral, c.now, cache);
            assert_eq!(v.verdict, Verdict::NotGenuine, "{}: bit {bit}", c.name);
            if v.evidence.failed("dcap.quote.parse") {
                parse_errors += 1;
            } else {
                assert!(
                    detected(&v),
                    "{}: bit {bit} not detected: {:?}",
                    c.name,
                    v.evidence
                );
            }
        }
        parse_errors
    };
    let (a, b) = bits.split_at(bits.len() / 2);
    let parse_errors = std::thread::scope(|s| {
        let h = s.spawn(|| run(a));
        run(b) + h.join().unwrap()
    });
    (bits.len(), parse_errors)
}

fn tamper_everything(c: &Case) {
    let cache = SignatureCache::new(1 << 16);
    let l = layout(&c.quote);
    // The bulk of the flips run without collateral (a verification with collateral
    // costs four times as much in a debug build): the untampered quote then fails
    // only `dcap.collateral`, so each flip is caught by the check asserted here.
    let clean = verify(&c.quote, None, c.now, &cache);
    let failed: Vec<&str> = clean.evidence.failures().map(|f| f.name.as_str()).collect();
    assert_eq!(failed, ["dcap.collateral"], "{}", c.name);
    let clean = verify(&c.quote, Some(&c.collateral), c.now, &cache);
    assert!(
        clean.evidence.all_passed(),
        "{}: {:?}",
        c.name,
        clean.evidence
    );

    let quote_sig = |v: &Verification| v.evidence.failed("dcap.quote.signature");
    let qe_sig = |v: &Verification| v.evidence.failed("dcap.qe_report.signature");
    let qe_data = |v: &Verification| v.evidence.failed("dcap.qe_report.data");
    let key = |v: &Verification| {
        v.evidence.failed("dcap.quote.signature") && v.evidence.failed("dcap.qe_report.data")
    };
    let counts = [
        (
            "header+body, every bit",
            flip_bits(c, l.signed.clone(), 1, None, &cache, quote_sig),
        ),
        (
            "header+body, every 64th bit, with collateral",
            flip_bits(
                c,
                l.signed.clone(),
                64,
                Some(&c.collateral),
                &cache,
                quote_sig,
            ),
        ),
        (
            "quote signature, every bit",
            flip_bits(c, l.signature, 1, None, &cache, quote_sig),
        ),
        (
            "attestation key, every bit",
            flip_bits(c, l.key, 1, None, &cache, key),
        ),
        (
            "QE report, every 4th bit",
            flip_bits(c, l.qe_report, 4, None, &cache, qe_sig),
        ),
        (
            "QE report signature, every bit",
            flip_bits(c, l.qe_report_signature, 1, None, &cache, qe_sig),
        ),
        (
            "QE auth data, every bit",
            flip_bits(c, l.qe_auth_data, 1, None, &cache, qe_data),
        ),
    ];
    let total: usize = counts.iter().map(|(_, (n, _))| n).sum();
    for (what, (n, parse)) in counts {
        println!(
            "{}: {what}: {n} flips, all not genuine ({parse} did not parse)",
            c.name
        );
    }
    println!("{}: {total} tampered quotes, all not genuine", c.name);
}

#[test]
fn every_bit_of_a_tdx_quote_is_guarded() {
    tamper_everything(&tdx());
}

#[test]
fn every_bit_of_an_sgx_quote_is_guarded() {
    tamper_everything(&sgx());
}

fn with(c: &Case, f: impl FnOnce(&mut Collateral)) -> Verification {
    let mut coll = c.collateral.clone();
    f(&mut coll);
    let cache = SignatureCache::new(1024);
    verify(&c.quote, Some(&coll), c.now, &cache)
}

fn assert_failed(v: &Verification, names: &[&str]) {
    assert_eq!(v.verdict, Verdict::NotGenuine);
    for n in names {
        assert!(v.evidence.failed(n), "{n} did not fail: {:?}", v.evidence);
    }
}

#[test]
fn collateral_of_another_platform_or_tee_is_refused() {
    let t = tdx();
    let s = sgx();
    // The SGX collateral (FMSPC 00A067110000, Processor CA) with the TDX quote.
    let v = with(&t, |c| *c = s.collateral.clone());
    assert_failed(
        &v,
        &[
            "dcap.tcb_info.id",
            "dcap.tcb_info.fmspc",
            "dcap.qe_identity.id",
            "dcap.qe_identity.match",
            "dcap.pck_crl.issuer_chain",
            "dcap.pck_crl.signature",
        ],
    );
    // The TDX collateral with the SGX quote.
    let v = with(&s, |c| *c = t.collateral.clone());
    assert_failed(
        &v,
        &[
            "dcap.tcb_info.id",
            "dcap.tcb_info.fmspc",
            "dcap.qe_identity.id",
        ],
    );
    // Only the TCB info of another TDX platform (GCP, FMSPC 00806F050000).
    let gcp = case("tdx/gcp-outofdate", 1739419232);
    let v = with(&t, |c| {
        c.tcb_info = gcp.collateral.tcb_info.clone();
        c.tcb_info_signature = gcp.collateral.tcb_info_signature.clone();
    });
    assert_failed(&v, &["dcap.tcb_info.fmspc"]);
    assert!(v.evidence.passed("dcap.tcb_info.signature"));
    // ... and the other way round, at the GCP quote's time.
    let v = with(&gcp, |c| {
        c.tcb_info = t.collateral.tcb_info.clone();
        c.tcb_info_signature = t.collateral.tcb_info_signature.clone();
    });
    assert_failed(&v, &["dcap.tcb_info.fmspc", "dcap.tcb_info.validity"]);
}

#[test]
fn swapped_or_corrupted_crls_are_refused() {
    let t = tdx();
    let s = sgx();
    // The PCK CRL where the root CRL belongs.
    let v = with(&t, |c| c.root_ca_crl = c.pck_crl.clone());
    assert_failed(&v, &["dcap.root_crl.signature"]);
    // An older root CRL: genuine, but expired at this time.
    let gcp = case("tdx/gcp-outofdate", 1739419232);
    let v = with(&t, |c| c.root_ca_crl = gcp.collateral.root_ca_crl.clone());
    assert_failed(&v, &["dcap.root_crl.validity"]);
    assert!(v.evidence.passed("dcap.root_crl.signature"));
    // The Processor CA's CRL for a Platform CA PCK.
    let v = with(&t, |c| c.pck_crl = s.collateral.pck_crl.clone());
    assert_failed(&v, &["dcap.pck_crl.signature"]);
    // The root CRL where the PCK CRL belongs.
    let v = with(&t, |c| c.pck_crl = c.root_ca_crl.clone());
    assert_failed(&v, &["dcap.pck_crl.signature"]);
    // One hex digit changed near the end (inside the signature) of each CRL.
    for field in ["root", "pck"] {
        let v = with(&t, |c| {
            let crl = if field == "root" {
                &mut c.root_ca_crl
            } else {
                &mut c.pck_crl
            };
            let at = crl.len() - 10;
            let digit = if &crl[at..=at] == "0" { "1" } else { "0" };
            crl.replace_range(at..=at, digit);
        });
        assert_failed(&v, &[&format!("dcap.{field}_crl.signature")]);
    }
    // Not a CRL at all.
    let v = with(&t, |c| {
        c.root_ca_crl = "zz".into();
        c.pck_crl = String::new();
    });
    assert_failed(
        &v,
        &[
            "dcap.root_crl.signature",
            "dcap.pck_crl.signature",
            "dcap.pck.revocation",
        ],
    );
    // An empty PCK CRL issuer chain is fine: the quote's PCK CA is used.
    let v = with(&t, |c| c.pck_crl_issuer_chain = String::new());
    assert_eq!(v.verdict, Verdict::Accepted);
    // A PCK CRL issuer chain naming another CA is not.
    let v = with(&t, |c| {
        c.pck_crl_issuer_chain = s.collateral.pck_crl_issuer_chain.clone()
    });
    assert_failed(&v, &["dcap.pck_crl.issuer_chain"]);
}

#[test]
fn any_changed_byte_of_the_signed_json_breaks_its_signature() {
    let t = tdx();
    let mut changed = 0;
    for field in ["tcb_info", "qe_identity"] {
        let len = if field == "tcb_info" {
            t.collateral.tcb_info.len()
        } else {
            t.collateral.qe_identity.len()
        };
        for at in (0..len).step_by(7) {
            let v = with(&t, |c| {
                let doc = if field == "tcb_info" {
                    &mut c.tcb_info
                } else {
                    &mut c.qe_identity
                };
                let mut bytes = std::mem::take(doc).into_bytes();
                bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
                *doc = String::from_utf8(bytes).unwrap();
            });
            assert_failed(&v, &[&format!("dcap.{field}.signature")]);
            changed += 1;
        }
    }
    println!("{changed} single-byte changes of the TCB info and QE identity, all refused");
    // Signatures swapped between the two documents.
    let v = with(&t, |c| {
        std::mem::swap(&mut c.tcb_info_signature, &mut c.qe_identity_signature)
    });
    assert_failed(
        &v,
        &["dcap.tcb_info.signature", "dcap.qe_identity.signature"],
    );
    // A signature that is not 64 hex bytes.
    let v = with(&t, |c| c.tcb_info_signature.truncate(100));
    assert_failed(&v, &["dcap.tcb_info.signature"]);
}

#[test]
fn issuer_chains_must_lead_to_the_tcb_signer_under_the_pinned_root() {
    let t = tdx();
    // The signer alone: the root is taken from the pinned one.
    let signer_only = {
        let chain = &t.collateral.tcb_info_issuer_chain;
        let end = chain.find("-----END CERTIFICATE-----").unwrap() + 25;
        chain[..end].to_owned()
    };
    let v = with(&t, |c| c.tcb_info_issuer_chain = signer_only.clone());
    assert_eq!(v.verdict, Verdict::Accepted, "{:?}", v.evidence);
    // The PCK CA chain in place of the TCB signing chain.
    let v = with(&t, |c| {
        c.tcb_info_issuer_chain = c.pck_crl_issuer_chain.clone()
    });
    assert_failed(&v, &["dcap.tcb_info.chain", "dcap.tcb_info.signature"]);
    // Only the root: no signer at all.
    let v = with(&t, |c| {
        let chain = &c.qe_identity_issuer_chain;
        let start = chain.find("-----END CERTIFICATE-----").unwrap() + 25;
        c.qe_identity_issuer_chain = chain[start..].trim().to_owned();
    });
    assert_failed(
        &v,
        &["dcap.qe_identity.chain", "dcap.qe_identity.signature"],
    );
    // No chain.
    let v = with(&t, |c| c.tcb_info_issuer_chain.clear());
    assert_failed(&v, &["dcap.tcb_info.chain", "dcap.tcb_info.signature"]);
}

#[test]
fn a_root_carried_with_the_evidence_is_never_trusted_for_being_there() {
    let t = tdx();
    let chain = &t.collateral.tcb_info_issuer_chain;
    let signer = &chain[..chain.find("-----END CERTIFICATE-----").unwrap() + 25];
    // The TCB signer followed by a foreign self-signed root (AMD's Milan ARK).
    let ark = include_str!("../roots/amd/milan/ark.pem");
    let foreign = format!("{signer}\n{ark}");
    let v = with(&t, |c| c.tcb_info_issuer_chain = foreign.clone());
    assert_failed(&v, &["dcap.tcb_info.chain"]);
    // Trusting that root explicitly does not help: it did not sign the signer.
    let extra = [keep_verifier::pki::Cert::from_der_or_pem(ark.as_bytes()).unwrap()];
    let mut coll = t.collateral.clone();
    coll.tcb_info_issuer_chain = foreign;
    let opts = Options {
        extra_intel_roots: &extra,
        ..Options::default()
    };
    let v = dcap::verify(
        &t.quote,
        Some(&coll),
        &TdxPolicy::default(),
        &SgxPolicy::default(),
        t.now,
        opts,
    );
    assert_failed(&v, &["dcap.tcb_info.chain"]);
    // An extra root does not disturb evidence under the pinned one.
    let v = dcap::verify(
        &t.quote,
        Some(&t.collateral),
        &TdxPolicy::default(),
        &SgxPolicy::default(),
        t.now,
        opts,
    );
    assert_eq!(v.verdict, Verdict::Accepted);
}

#[test]
fn checks_go_on_after_a_failure() {
    let t = tdx();
    let v = with(&t, |c| {
        c.tcb_info = "not json".into();
        c.qe_identity = "{}".into();
    });
    assert_failed(
        &v,
        &[
            "dcap.tcb_info.parse",
            "dcap.tcb_info.signature",
            "dcap.qe_identity.parse",
            "dcap.qe_identity.signature",
        ],
    );
    for still in [
        "dcap.quote.signature",
        "dcap.qe_report.signature",
        "dcap.pck.chain",
        "dcap.root_crl.signature",
        "dcap.pck_crl.signature",
        "dcap.tcb_info.chain",
        "dcap.qe_identity.chain",
    ] {
        assert!(v.evidence.passed(still), "{still}");
    }
    assert!(!v.policy.is_empty());
}

#[test]
fn truncated_and_overlong_quotes_are_parse_errors_and_unsigned_tails_ignored() {
    for c in [
        tdx(),
        sgx(),
        case("tdx/dcap-qvl-v5-no-tcb-level", 1774003274),
    ] {
        // Past `end` only zero padding is left, which may be cut.
        let end = c.quote.len() - c.quote.iter().rev().take_while(|&&b| b == 0).count();
        let cache = SignatureCache::new(16);
        let mut errors = 0;
        for n in 0..end {
            assert!(
                dcap::Quote::parse(&c.quote[..n]).is_err(),
                "{}: {n}",
                c.name
            );
            errors += 1;
        }
        for n in (0..end).step_by(97) {
            let v = verify(&c.quote[..n], Some(&c.collateral), c.now, &cache);
            assert!(v.evidence.failed("dcap.quote.parse"));
            assert_eq!(v.verdict, Verdict::NotGenuine);
        }
        // Unsigned bytes after the signature data are ignored, and counted.
        let mut long = c.quote.clone();
        long.extend(b"not signed");
        let v = verify(&long, Some(&c.collateral), c.now, &cache);
        let plain = verify(&c.quote, Some(&c.collateral), c.now, &cache);
        assert_eq!(v.verdict, plain.verdict, "{}", c.name);
        let extra = dcap::Quote::parse(&c.quote).unwrap().trailing_bytes + 10;
        assert_eq!(dcap::Quote::parse(&long).unwrap().trailing_bytes, extra);
        let note = v.evidence.iter().find(|k| k.name == "dcap.quote.parse");
        assert!(
            note.is_some_and(|k| k.passed && k.detail.starts_with(&format!("{extra} bytes"))),
            "{}: {note:?}",
            c.name
        );
        long.extend(vec![0u8; 70_000]);
        assert!(matches!(
            dcap::Quote::parse(&long),
            Err(DcapError::TooLarge { .. })
        ));
        println!("{}: {errors} truncations refused", c.name);
    }
    let v = verify(b"", None, UnixTime(0), &SignatureCache::new(1));
    assert_eq!(v.verdict, Verdict::NotGenuine);
}

#[test]
fn garbage_json_gives_typed_errors() {
    for bad in [
        &b"garbage"[..],
        b"{\"tcb_info\": 1}",
        b"\x00\x01",
        b"[1,2]",
        b"{}",
    ] {
        assert!(
            matches!(Collateral::from_json(bad), Err(DcapError::Json { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(dcap::TcbInfo::parse(bad), Err(DcapError::Json { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(dcap::QeIdentity::parse(bad), Err(DcapError::Json { .. })),
            "{bad:?}"
        );
    }
    let t = tdx();
    for n in (0..t.collateral.tcb_info.len()).step_by(13) {
        assert!(dcap::TcbInfo::parse(&t.collateral.tcb_info.as_bytes()[..n]).is_err());
    }
}

/// A small deterministic generator for the mutation test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Overwrites, inserts or removes a few bytes.
    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(3) {
                0 if at < out.len() => out[at] = self.next() as u8,
                1 => out.insert(at, self.next() as u8),
                _ if at < out.len() => {
                    out.remove(at);
                }
                _ => {}
            }
        }
        out
    }
}

#[test]
fn random_mutations_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let cache = SignatureCache::new(1 << 12);
    let cases = [tdx(), sgx(), case("tdx/gcp-outofdate", 1739419232)];
    let mut parsed = 0;
    for c in &cases {
        for _ in 0..2000 {
            if dcap::Quote::parse(&rng.mutate(&c.quote)).is_ok() {
                parsed += 1;
            }
        }
        for _ in 0..100 {
            let v = verify(&rng.mutate(&c.quote), Some(&c.collateral), c.now, &cache);
            assert!(!v.evidence.is_empty());
        }
        for _ in 0..1000 {
            let _ = dcap::TcbInfo::parse(&rng.mutate(c.collateral.tcb_info.as_bytes()));
            let _ = dcap::QeIdentity::parse(&rng.mutate(c.collateral.qe_identity.as_bytes()));
        }
        let json = serde_json::to_vec(&c.collateral).unwrap();
        for _ in 0..100 {
            if let Ok(coll) = Collateral::from_json(&rng.mutate(&json)) {
                let v = verify(&c.quote, Some(&coll), c.now, &cache);
                assert!(!v.evidence.is_empty());
            }
        }
    }
    println!("{parsed} of 6000 mutated quotes still parsed (changes in unchecked fields)");
}
