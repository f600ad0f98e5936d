//! The SEV-SNP part of the policy file (`[snp]`), and its evaluation against a
//! genuine report. Each rule is recorded as `policy.snp.<rule>`; rules that are
//! not configured (an empty list, an absent value) are not recorded.
//!
//! ```toml
//! [snp]
//! allow_debug = false
//! allow_migration_agent = false
//! allow_smt = true
//! require_single_socket = false
//! vmpl = 0                       # or a list: vmpl = [0, 1]
//! min_tcb = { bootloader = 3, tee = 0, snp = 8, microcode = 115 }
//! min_guest_svn = 1
//! measurements = ["<96 hex digits>"]
//! host_data = []
//! id_key_digests = []
//! author_key_digests = []
//! report_data = "<hex>"
//! products = ["milan", "genoa"]
//! signing_keys = ["vcek"]
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::report::{Report, SigningKey};
use super::tcb::TcbVersion;
use crate::check::Checks;
use crate::policy::{HexBytes, report_data_matches};
use crate::roots::AmdProduct;

/// Rules for AMD SEV-SNP reports. The default is strict: no debug, no migration
/// agent, VMPL 0 only, and no reference values (any measurement is accepted until
/// the tenant pins one).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnpPolicy {
    /// Accept guests whose policy allows debugging (`POLICY.DEBUG`), which lets the
    /// hypervisor read and change guest memory. Default `false`.
    pub allow_debug: bool,
    /// Accept guests whose policy allows a migration agent (`POLICY.MIGRATE_MA`).
    /// Default `false`.
    pub allow_migration_agent: bool,
    /// Accept reports from hosts with simultaneous multithreading enabled
    /// (`PLATFORM_INFO.SMT_EN`). Default `true`: most hosts run with SMT on, and it
    /// exposes the guest to sibling-thread side channels rather than to the host;
    /// set `false` to require SMT off.
    pub allow_smt: bool,
    /// Require the guest policy to restrict it to a single socket
    /// (`POLICY.SINGLE_SOCKET`). Default `false`.
    pub require_single_socket: bool,
    /// The VMPLs the report may come from: one number (`vmpl = 0`) or a non-empty
    /// list (`vmpl = [0, 1]`). Default `0`, the most privileged level, where the
    /// guest's own kernel or its SVSM runs; a report requested from a higher VMPL
    /// comes from less privileged code.
    pub vmpl: VmplRule,
    /// Minimum security patch level of each TCB component in `REPORTED_TCB` (the TCB
    /// the VCEK is certified for). Each component is optional; `fmc` only applies to
    /// products with an FMC (Turin) and is ignored on Milan and Genoa.
    pub min_tcb: MinTcb,
    /// Minimum `GUEST_SVN`. Default: none.
    pub min_guest_svn: Option<u32>,
    /// Accepted launch measurements (48 bytes each, hex). Empty (the default) accepts
    /// any.
    pub measurements: Vec<HexBytes>,
    /// Accepted `HOST_DATA` values (32 bytes each, hex). Empty accepts any.
    pub host_data: Vec<HexBytes>,
    /// Accepted `ID_KEY_DIGEST` values (48 bytes each, hex): the keys allowed to sign
    /// the guest's ID block. Empty accepts any.
    pub id_key_digests: Vec<HexBytes>,
    /// Accepted `AUTHOR_KEY_DIGEST` values (48 bytes each, hex). Empty accepts any.
    pub author_key_digests: Vec<HexBytes>,
    /// The exact `REPORT_DATA` expected (e.g. a nonce): up to 64 bytes, hex; a shorter
    /// value must match the start and the rest must be zero. Default: none.
    pub report_data: Option<HexBytes>,
    /// Accepted products (`milan`, `genoa`, `turin`). Empty accepts any.
    pub products: Vec<Product>,
    /// Accepted signing keys (`vcek`, `vlek`). Empty accepts both.
    pub signing_keys: Vec<SigningKey>,
}

impl Default for SnpPolicy {
    fn default() -> Self {
        SnpPolicy {
            allow_debug: false,
            allow_migration_agent: false,
            allow_smt: true,
            require_single_socket: false,
            vmpl: VmplRule::default(),
            min_tcb: MinTcb::default(),
            min_guest_svn: None,
            measurements: Vec::new(),
            host_data: Vec::new(),
            id_key_digests: Vec::new(),
            author_key_digests: Vec::new(),
            report_data: None,
            products: Vec::new(),
            signing_keys: Vec::new(),
        }
    }
}

/// The accepted VMPLs: one level or a non-empty list of levels, each 0 to 3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmplRule(Vec<u32>);

impl VmplRule {
    /// Accepts exactly these levels; `None` when the list is empty or a level is
    /// over 3.
    pub fn new(levels: Vec<u32>) -> Option<Self> {
        (!levels.is_empty() && levels.iter().all(|&l| l <= 3)).then_some(VmplRule(levels))
    }

    /// The accepted levels.
    pub fn levels(&self) -> &[u32] {
        &self.0
    }

    /// Whether `vmpl` is accepted.
    pub fn allows(&self, vmpl: u32) -> bool {
        self.0.contains(&vmpl)
    }
}

impl Default for VmplRule {
    fn default() -> Self {
        VmplRule(vec![0])
    }
}

impl<'de> Deserialize<'de> for VmplRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(u32),
            Many(Vec<u32>),
        }
        let levels = match Form::deserialize(d)? {
            Form::One(l) => vec![l],
            Form::Many(ls) => ls,
        };
        VmplRule::new(levels).ok_or_else(|| {
            serde::de::Error::custom("vmpl must be a level 0-3 or a non-empty list of them")
        })
    }
}

impl Serialize for VmplRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_u32(*one),
            many => many.serialize(s),
        }
    }
}

/// Minimum SPL per TCB component; an absent component is not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MinTcb {
    /// Minimum PSP bootloader SPL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootloader: Option<u8>,
    /// Minimum PSP OS (TEE) SPL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tee: Option<u8>,
    /// Minimum SNP firmware SPL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snp: Option<u8>,
    /// Minimum microcode SPL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub microcode: Option<u8>,
    /// Minimum FMC SPL (Turin and later; ignored on products without an FMC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
}

impl MinTcb {
    fn is_empty(&self) -> bool {
        *self == MinTcb::default()
    }

    /// The components of `tcb` below their minimum, as `name value < min`.
    fn shortfalls(&self, tcb: &TcbVersion) -> Vec<String> {
        let mut out = Vec::new();
        let pairs = [
            ("fmc", self.fmc, tcb.fmc),
            ("bootloader", self.bootloader, Some(tcb.bootloader)),
            ("tee", self.tee, Some(tcb.tee)),
            ("snp", self.snp, Some(tcb.snp)),
            ("microcode", self.microcode, Some(tcb.microcode)),
        ];
        for (name, min, have) in pairs {
            if let (Some(min), Some(have)) = (min, have)
                && have < min
            {
                out.push(format!("{name} {have} < {min}"));
            }
        }
        out
    }
}

/// A product name in the policy, case-insensitive (`milan`, `Genoa`, `TURIN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product(pub AmdProduct);

impl<'de> Deserialize<'de> for Product {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AmdProduct::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .map(Product)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown product {s:?} (expected milan, genoa or turin)"
                ))
            })
    }
}

impl Serialize for Product {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.name().to_ascii_lowercase())
    }
}

/// Whether `value` is one of `allowed` (an empty list allows anything).
fn listed(allowed: &[HexBytes], value: &[u8]) -> bool {
    allowed.iter().any(|a| a.0 == value)
}

/// What the policy needs besides the report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    /// The product the evidence was verified for.
    pub product: Option<AmdProduct>,
}

impl SnpPolicy {
    /// Evaluates every configured rule against a report, recording each as
    /// `policy.snp.<rule>`.
    pub(crate) fn evaluate(&self, report: &Report, ctx: Context, checks: &mut Checks) {
        let p = &report.policy;
        checks.expect("policy.snp.debug", self.allow_debug || !p.debug, || {
            "the guest policy allows debugging".into()
        });
        checks.expect(
            "policy.snp.migration_agent",
            self.allow_migration_agent || !p.migrate_ma,
            || "the guest policy allows a migration agent".into(),
        );
        checks.expect(
            "policy.snp.smt",
            self.allow_smt || !report.platform_info.smt_enabled,
            || "SMT is enabled on the host".into(),
        );
        checks.expect(
            "policy.snp.single_socket",
            !self.require_single_socket || p.single_socket,
            || "the guest policy does not require a single socket".into(),
        );
        checks.expect("policy.snp.vmpl", self.vmpl.allows(report.vmpl), || {
            format!(
                "VMPL {} is not one of {:?}",
                report.vmpl,
                self.vmpl.levels()
            )
        });
        if !self.min_tcb.is_empty() {
            match ctx.product {
                Some(product) => {
                    let tcb = TcbVersion::decode(report.reported_tcb, product);
                    let short = self.min_tcb.shortfalls(&tcb);
                    checks.expect("policy.snp.min_tcb", short.is_empty(), || {
                        format!("REPORTED_TCB below minimum: {}", short.join(", "))
                    });
                }
                None => checks.fail(
                    "policy.snp.min_tcb",
                    "unknown product, so the TCB cannot be decoded",
                ),
            }
        }
        if let Some(min) = self.min_guest_svn {
            checks.expect("policy.snp.min_guest_svn", report.guest_svn >= min, || {
                format!("GUEST_SVN {} < {min}", report.guest_svn)
            });
        }
        let lists: [(&str, &[HexBytes], &[u8]); 4] = [
            ("measurement", &self.measurements, &report.measurement),
            ("host_data", &self.host_data, &report.host_data),
            ("id_key_digest", &self.id_key_digests, &report.id_key_digest),
            (
                "author_key_digest",
                &self.author_key_digests,
                &report.author_key_digest,
            ),
        ];
        for (rule, allowed, value) in lists {
            if !allowed.is_empty() {
                checks.expect(format!("policy.snp.{rule}"), listed(allowed, value), || {
                    format!("{rule} {} is not in the policy", hex::encode(value))
                });
            }
        }
        if let Some(expected) = &self.report_data {
            checks.expect(
                "policy.snp.report_data",
                report_data_matches(&expected.0, &report.report_data),
                || {
                    format!(
                        "REPORT_DATA {} is not the expected {}",
                        hex::encode(report.report_data),
                        hex::encode(&expected.0)
                    )
                },
            );
        }
        if !self.products.is_empty() {
            checks.expect(
                "policy.snp.product",
                ctx.product
                    .is_some_and(|p| self.products.iter().any(|q| q.0 == p)),
                || {
                    format!(
                        "product {} is not allowed",
                        ctx.product.map_or("unknown", AmdProduct::name)
                    )
                },
            );
        }
        if !self.signing_keys.is_empty() {
            let key = report.signing_key();
            checks.expect(
                "policy.snp.signing_key",
                key.is_some_and(|k| self.signing_keys.contains(&k)),
                || {
                    format!(
                        "signing key {} is not allowed",
                        key.map_or("none", SigningKey::name)
                    )
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    const MILAN_DEBUG: &[u8] =
        include_bytes!("../../tests/vectors/snp/milan-debug-policy/report.bin");
    const VLEK_AWS: &[u8] = include_bytes!("../../tests/vectors/snp/milan-vlek-aws/report.bin");
    const TURIN: &[u8] = include_bytes!("../../tests/vectors/snp/turin-oak-v5/report.bin");

    /// A report with the given bytes patched in (the signature does not matter here).
    fn report(base: &[u8], patches: &[(usize, &[u8])]) -> Report {
        let mut b = base.to_vec();
        for (off, bytes) in patches {
            b[*off..*off + bytes.len()].copy_from_slice(bytes);
        }
        Report::parse(&b).unwrap()
    }

    fn eval(policy: &SnpPolicy, r: &Report, product: Option<AmdProduct>) -> Checks {
        let mut c = Checks::new();
        policy.evaluate(r, Context { product }, &mut c);
        c
    }

    fn snp(toml_text: &str) -> SnpPolicy {
        Policy::from_toml(toml_text).unwrap().snp
    }

    /// milan-virtee-like: no debug, SMT allowed and on, VMPL 0.
    fn plain() -> Report {
        report(MILAN_DEBUG, &[(0x08, &0x30000u64.to_le_bytes())])
    }

    #[test]
    fn the_default_is_strict_and_records_the_always_on_rules() {
        let c = eval(&SnpPolicy::default(), &plain(), Some(AmdProduct::Milan));
        let names: Vec<&str> = c.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "policy.snp.debug",
                "policy.snp.migration_agent",
                "policy.snp.smt",
                "policy.snp.single_socket",
                "policy.snp.vmpl"
            ]
        );
        assert!(c.all_passed(), "{c:?}");
        assert_eq!(snp(""), SnpPolicy::default());
        assert_eq!(snp("[snp]\n"), SnpPolicy::default());
    }

    #[test]
    fn debug_both_ways() {
        let r = Report::parse(MILAN_DEBUG).unwrap();
        assert!(eval(&SnpPolicy::default(), &r, None).failed("policy.snp.debug"));
        let p = snp("[snp]\nallow_debug = true");
        assert!(eval(&p, &r, None).passed("policy.snp.debug"));
    }

    #[test]
    fn migration_agent_both_ways() {
        let r = report(MILAN_DEBUG, &[(0x08, &0x70000u64.to_le_bytes())]);
        assert!(eval(&SnpPolicy::default(), &r, None).failed("policy.snp.migration_agent"));
        let p = snp("[snp]\nallow_migration_agent = true");
        assert!(eval(&p, &r, None).passed("policy.snp.migration_agent"));
    }

    #[test]
    fn smt_both_ways() {
        let on = plain();
        assert!(on.platform_info.smt_enabled);
        let p = snp("[snp]\nallow_smt = false");
        assert!(eval(&p, &on, None).failed("policy.snp.smt"));
        assert!(eval(&SnpPolicy::default(), &on, None).passed("policy.snp.smt"));
        let off = report(MILAN_DEBUG, &[(0x40, &0u64.to_le_bytes())]);
        assert!(eval(&p, &off, None).passed("policy.snp.smt"));
    }

    #[test]
    fn single_socket_both_ways() {
        let p = snp("[snp]\nrequire_single_socket = true");
        assert!(eval(&p, &plain(), None).failed("policy.snp.single_socket"));
        let r = report(MILAN_DEBUG, &[(0x08, &0x130000u64.to_le_bytes())]);
        assert!(r.policy.single_socket);
        assert!(eval(&p, &r, None).passed("policy.snp.single_socket"));
    }

    #[test]
    fn vmpl_one_level_or_a_list() {
        let vlek = Report::parse(VLEK_AWS).unwrap();
        assert_eq!(vlek.vmpl, 1);
        assert!(eval(&SnpPolicy::default(), &vlek, None).failed("policy.snp.vmpl"));
        assert!(eval(&snp("[snp]\nvmpl = 1"), &vlek, None).passed("policy.snp.vmpl"));
        let list = snp("[snp]\nvmpl = [0, 1]");
        assert_eq!(list.vmpl.levels(), [0, 1]);
        assert!(eval(&list, &vlek, None).passed("policy.snp.vmpl"));
        assert!(eval(&list, &plain(), None).passed("policy.snp.vmpl"));
        assert!(eval(&snp("[snp]\nvmpl = [2, 3]"), &plain(), None).failed("policy.snp.vmpl"));
        for bad in [
            "vmpl = []",
            "vmpl = 4",
            "vmpl = [0, 7]",
            "vmpl = -1",
            "vmpl = \"0\"",
        ] {
            assert!(
                Policy::from_toml(&format!("[snp]\n{bad}")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn min_tcb_per_component_and_product_layout() {
        // The debug report's REPORTED_TCB: bl 2, tee 0, snp 5, microcode 0x44 = 68.
        let r = plain();
        let milan = Some(AmdProduct::Milan);
        let ok = snp("[snp]\nmin_tcb = { bootloader = 2, tee = 0, snp = 5, microcode = 68 }");
        assert!(eval(&ok, &r, milan).passed("policy.snp.min_tcb"));
        for (rule, part) in [
            ("bootloader = 3", "bootloader 2 < 3"),
            ("tee = 1", "tee 0 < 1"),
            ("snp = 6", "snp 5 < 6"),
            ("microcode = 69", "microcode 68 < 69"),
        ] {
            let c = eval(&snp(&format!("[snp]\nmin_tcb = {{ {rule} }}")), &r, milan);
            assert!(c.failed("policy.snp.min_tcb"), "{rule}");
            let detail = &c.failures().next().unwrap().detail;
            assert!(detail.contains(part), "{detail}");
        }
        // FMC is ignored on Milan, checked on Turin (turin-oak-v5: fmc 0 bl 1 tee 0 snp 2 ucode 71).
        let fmc = snp("[snp]\nmin_tcb = { fmc = 1 }");
        assert!(eval(&fmc, &r, milan).passed("policy.snp.min_tcb"));
        let turin = Report::parse(TURIN).unwrap();
        let c = eval(&fmc, &turin, Some(AmdProduct::Turin));
        assert!(c.failed("policy.snp.min_tcb"), "{c:?}");
        let ok = snp("[snp]\nmin_tcb = { fmc = 0, bootloader = 1, snp = 2, microcode = 71 }");
        assert!(eval(&ok, &turin, Some(AmdProduct::Turin)).passed("policy.snp.min_tcb"));
        assert!(
            eval(&ok, &turin, None).failed("policy.snp.min_tcb"),
            "unknown product"
        );
        assert!(Policy::from_toml("[snp]\nmin_tcb = { pl = 1 }").is_err());
        assert!(Policy::from_toml("[snp]\nmin_tcb = { snp = 256 }").is_err());
    }

    #[test]
    fn min_guest_svn_both_ways() {
        let r = report(MILAN_DEBUG, &[(0x04, &5u32.to_le_bytes())]);
        assert!(
            eval(&snp("[snp]\nmin_guest_svn = 5"), &r, None).passed("policy.snp.min_guest_svn")
        );
        assert!(
            eval(&snp("[snp]\nmin_guest_svn = 6"), &r, None).failed("policy.snp.min_guest_svn")
        );
    }

    #[test]
    fn reference_value_lists_both_ways() {
        let r = plain();
        let cases = [
            ("measurements", "measurement", hex::encode(r.measurement)),
            ("host_data", "host_data", hex::encode(r.host_data)),
            (
                "id_key_digests",
                "id_key_digest",
                hex::encode(r.id_key_digest),
            ),
            (
                "author_key_digests",
                "author_key_digest",
                hex::encode(r.author_key_digest),
            ),
        ];
        for (field, rule, value) in cases {
            let name = format!("policy.snp.{rule}");
            let other = "ab".repeat(value.len() / 2);
            let yes = snp(&format!(
                "[snp]\n{field} = [\"{other}\", \"{}\"]",
                value.to_uppercase()
            ));
            assert!(eval(&yes, &r, None).passed(&name), "{field}");
            let no = snp(&format!("[snp]\n{field} = [\"{other}\"]"));
            assert!(eval(&no, &r, None).failed(&name), "{field}");
            let c = eval(&SnpPolicy::default(), &r, None);
            assert!(
                !c.iter().any(|c| c.name == name),
                "empty list: not recorded"
            );
        }
        assert!(Policy::from_toml("[snp]\nmeasurements = [\"xyz\"]").is_err());
    }

    #[test]
    fn report_data_both_ways() {
        let mut data = [0u8; 64];
        data[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        let r = report(MILAN_DEBUG, &[(0x50, &data)]);
        let mut p = SnpPolicy {
            report_data: Some(HexBytes(vec![0xde, 0xad, 0xbe, 0xef])),
            ..SnpPolicy::default()
        };
        assert!(eval(&p, &r, None).passed("policy.snp.report_data"));
        p.report_data = Some(HexBytes(vec![0xde, 0xad]));
        assert!(eval(&p, &r, None).failed("policy.snp.report_data"));
        let from_toml = snp("[snp]\nreport_data = \"DEADBEEF\"");
        assert!(eval(&from_toml, &r, None).passed("policy.snp.report_data"));
    }

    #[test]
    fn products_and_signing_keys_both_ways() {
        let r = plain();
        let p = snp("[snp]\nproducts = [\"Genoa\", \"milan\"]\nsigning_keys = [\"vcek\"]");
        let c = eval(&p, &r, Some(AmdProduct::Milan));
        assert!(c.passed("policy.snp.product") && c.passed("policy.snp.signing_key"));
        let c = eval(&p, &r, Some(AmdProduct::Turin));
        assert!(c.failed("policy.snp.product"));
        assert!(eval(&p, &r, None).failed("policy.snp.product"));
        let vlek = Report::parse(VLEK_AWS).unwrap();
        assert!(eval(&p, &vlek, Some(AmdProduct::Milan)).failed("policy.snp.signing_key"));
        let both = snp("[snp]\nsigning_keys = [\"vcek\", \"vlek\"]");
        assert!(eval(&both, &vlek, None).passed("policy.snp.signing_key"));
        assert!(Policy::from_toml("[snp]\nproducts = [\"rome\"]").is_err());
        assert!(Policy::from_toml("[snp]\nsigning_keys = [\"vcek2\"]").is_err());
    }

    #[test]
    fn unknown_fields_are_errors_and_the_policy_round_trips() {
        assert!(Policy::from_toml("[snp]\nallow_debugging = true").is_err());
        let p = snp(
            "[snp]\nvmpl = [0, 1]\nmin_tcb = { snp = 8 }\nproducts = [\"milan\"]\n\
             signing_keys = [\"vlek\"]\nmeasurements = [\"00ff\"]",
        );
        #[derive(Serialize)]
        struct Wrapper<'a> {
            snp: &'a SnpPolicy,
        }
        let text = toml::to_string(&Wrapper { snp: &p }).unwrap();
        assert_eq!(Policy::from_toml(&text).unwrap().snp, p, "{text}");
    }
}
