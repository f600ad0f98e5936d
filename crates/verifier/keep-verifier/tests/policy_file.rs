//! The documented example policy parses, and its values mean what the comments say.

use keep_verifier::Policy;

#[test]
fn the_example_policy_parses_and_matches_the_defaults_it_documents() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../examples/policy.toml"
    ))
    .unwrap();
    let p = Policy::from_toml(&text).unwrap();
    let d = Policy::default();
    assert_eq!(p.tdx, d.tdx, "the [tdx] section shows exactly the defaults");
    assert_eq!(p.sgx, d.sgx, "the [sgx] section shows exactly the defaults");
    assert_eq!(p.snp.allow_debug, d.snp.allow_debug);
    assert_eq!(p.snp.vmpl, d.snp.vmpl);
    assert_ne!(
        p.snp.min_tcb, d.snp.min_tcb,
        "the example sets a minimum TCB"
    );
}

#[test]
fn an_empty_policy_is_the_strict_default() {
    let p = Policy::from_toml("").unwrap();
    assert_eq!(p, Policy::default());
    assert!(!p.snp.allow_debug && !p.tdx.allow_debug && !p.sgx.allow_debug);
}

#[test]
fn errors_name_line_and_column() {
    let e = Policy::from_toml("[tdx]\nallow_debug = false\nmrtd = [\"zz\"]\n").unwrap_err();
    assert!(e.to_string().starts_with("3:"), "{e}");
    let e = Policy::from_toml("[snp]\nvmpl = 0\n[sev]\n").unwrap_err();
    assert!(e.to_string().starts_with("3:"), "{e}");
    assert!(e.to_string().contains("sev"), "{e}");
    let big = "#".repeat(2 * 1024 * 1024);
    assert!(Policy::from_toml(&big).is_err());
}
