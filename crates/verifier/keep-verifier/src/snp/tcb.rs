//! TCB versions and products. A TCB version is a 64-bit value of security patch
//! levels (SPLs), one byte per component, whose layout depends on the product:
//!
//! | byte | Milan, Genoa | Turin |
//! |------|--------------|-------|
//! | 0    | bootloader   | FMC   |
//! | 1    | TEE          | bootloader |
//! | 2    | reserved     | TEE   |
//! | 3    | reserved     | SNP   |
//! | 4-5  | reserved     | reserved |
//! | 6    | SNP          | reserved |
//! | 7    | microcode    | microcode |

use serde::Serialize;

use crate::roots::AmdProduct;

/// A decoded TCB version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TcbVersion {
    /// The raw 64-bit value as stored in the report.
    pub raw: u64,
    /// Firmware mailbox controller SPL (Turin and later only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fmc: Option<u8>,
    /// PSP bootloader SPL.
    pub bootloader: u8,
    /// PSP operating system (TEE) SPL.
    pub tee: u8,
    /// SNP firmware SPL.
    pub snp: u8,
    /// CPU microcode SPL.
    pub microcode: u8,
}

impl TcbVersion {
    /// Decodes `raw` with the layout of `product`.
    pub fn decode(raw: u64, product: AmdProduct) -> Self {
        let b = raw.to_le_bytes();
        match product {
            AmdProduct::Milan | AmdProduct::Genoa => TcbVersion {
                raw,
                fmc: None,
                bootloader: b[0],
                tee: b[1],
                snp: b[6],
                microcode: b[7],
            },
            AmdProduct::Turin => TcbVersion {
                raw,
                fmc: Some(b[0]),
                bootloader: b[1],
                tee: b[2],
                snp: b[3],
                microcode: b[7],
            },
        }
    }

    /// The components as (name, value) pairs, FMC first when present.
    pub fn components(&self) -> Vec<(&'static str, u8)> {
        let mut out = Vec::with_capacity(5);
        if let Some(fmc) = self.fmc {
            out.push(("fmc", fmc));
        }
        out.extend([
            ("bootloader", self.bootloader),
            ("tee", self.tee),
            ("snp", self.snp),
            ("microcode", self.microcode),
        ]);
        out
    }
}

impl std::fmt::Display for TcbVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .components()
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        f.write_str(&parts.join(" "))
    }
}

/// The product of a CPU identified by the report's CPUID family and model (report
/// version 3 and later). Family 0x19: models 0x00-0x0F are Milan, 0x10-0x1F and
/// 0xA0-0xAF are Genoa (including Bergamo and Siena). Family 0x1A: models 0x00-0x1F
/// are Turin (classic and dense).
pub fn product_from_cpuid(family: u8, model: u8) -> Option<AmdProduct> {
    match (family, model) {
        (0x19, 0x00..=0x0F) => Some(AmdProduct::Milan),
        (0x19, 0x10..=0x1F | 0xA0..=0xAF) => Some(AmdProduct::Genoa),
        (0x1A, 0x00..=0x1F) => Some(AmdProduct::Turin),
        _ => None,
    }
}

/// The product named by a VCEK's `productName` extension: `Milan-B0`, `Genoa`, ...
pub fn product_from_name(name: &str) -> Option<AmdProduct> {
    let base = name.split('-').next()?;
    AmdProduct::ALL.into_iter().find(|p| p.name() == base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milan_and_genoa_layout() {
        // milan-virtee's REPORTED_TCB: bl 3, tee 0, snp 8, microcode 115.
        let raw = u64::from_le_bytes([0x03, 0x00, 0, 0, 0, 0, 0x08, 0x73]);
        for p in [AmdProduct::Milan, AmdProduct::Genoa] {
            let t = TcbVersion::decode(raw, p);
            assert_eq!(
                (t.fmc, t.bootloader, t.tee, t.snp, t.microcode),
                (None, 3, 0, 8, 115)
            );
        }
        assert_eq!(
            TcbVersion::decode(raw, AmdProduct::Milan).to_string(),
            "bootloader=3 tee=0 snp=8 microcode=115"
        );
    }

    #[test]
    fn turin_layout_has_fmc_first() {
        // turin-oak-v5's REPORTED_TCB: fmc 0, bl 1, tee 0, snp 2, microcode 71.
        let raw = u64::from_le_bytes([0x00, 0x01, 0x00, 0x02, 0, 0, 0, 0x47]);
        let t = TcbVersion::decode(raw, AmdProduct::Turin);
        assert_eq!(
            (t.fmc, t.bootloader, t.tee, t.snp, t.microcode),
            (Some(0), 1, 0, 2, 71)
        );
        // The same bytes read with the Milan layout mean something else.
        let m = TcbVersion::decode(raw, AmdProduct::Milan);
        assert_eq!((m.bootloader, m.tee, m.snp, m.microcode), (0, 1, 0, 71));
        assert_eq!(t.components()[0], ("fmc", 0));
    }

    #[test]
    fn products_from_cpuid_and_names() {
        assert_eq!(product_from_cpuid(0x19, 0x01), Some(AmdProduct::Milan));
        assert_eq!(product_from_cpuid(0x19, 0x11), Some(AmdProduct::Genoa));
        assert_eq!(product_from_cpuid(0x19, 0xA0), Some(AmdProduct::Genoa));
        assert_eq!(product_from_cpuid(0x1A, 0x02), Some(AmdProduct::Turin));
        assert_eq!(product_from_cpuid(0x19, 0x21), None);
        assert_eq!(product_from_cpuid(0x17, 0x01), None);
        assert_eq!(product_from_cpuid(0, 0), None);
        assert_eq!(product_from_name("Milan-B0"), Some(AmdProduct::Milan));
        assert_eq!(product_from_name("Genoa"), Some(AmdProduct::Genoa));
        assert_eq!(product_from_name("Turin"), Some(AmdProduct::Turin));
        assert_eq!(product_from_name("milan"), None);
        assert_eq!(product_from_name(""), None);
    }
}
