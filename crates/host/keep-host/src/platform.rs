//! Which backends work on this machine, and why the others do not.

use std::path::Path;

use serde::Serialize;

/// The kinds of Keep: the one list the CLI, the agent and keep-host use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    Process,
    Kvm,
    SevSnp,
    Tdx,
    Sgx,
}

impl BackendKind {
    /// Every kind, in the order `keep platform info` lists them.
    pub const ALL: [BackendKind; 5] =
        [Self::Process, Self::Kvm, Self::SevSnp, Self::Tdx, Self::Sgx];
    /// The kinds a user may ask a Keep of (SGX is only detected).
    pub const CHOICES: [BackendKind; 4] = [Self::Process, Self::Kvm, Self::SevSnp, Self::Tdx];

    pub fn name(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Kvm => "kvm",
            Self::SevSnp => "sev-snp",
            Self::Tdx => "tdx",
            Self::Sgx => "sgx",
        }
    }

    /// The kind of this name (`process`, `kvm`, `sev-snp`, `tdx`, `sgx`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether keep can start Keeps of this kind (on a machine that has it).
    pub fn implemented(self) -> bool {
        matches!(self, Self::Process | Self::Kvm)
    }

    /// One line on what it is, for `--help`.
    pub fn about(self) -> &'static str {
        match self {
            Self::Process => "a child process: no isolation from the host, for development",
            Self::Kvm => {
                "a KVM virtual machine with Keep's microkernel (needs /dev/kvm; dirs and sockets served by the host, in clear)"
            }
            Self::SevSnp => "AMD SEV-SNP (not implemented yet)",
            Self::Tdx => "Intel TDX (not implemented yet)",
            Self::Sgx => "Intel SGX (detected only)",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One backend's availability.
#[derive(Debug, Clone, Serialize)]
pub struct BackendStatus {
    pub backend: BackendKind,
    /// Whether the hardware or kernel support is present.
    pub available: bool,
    /// Whether `keep` can run Keeps on it today.
    pub implemented: bool,
    /// Why, in one sentence.
    pub detail: String,
}

/// What `keep platform info` reports.
#[derive(Debug, Clone, Serialize)]
pub struct PlatformInfo {
    pub backends: Vec<BackendStatus>,
}

/// Probes this machine. Reads only a few files under /dev, /sys and /proc.
pub fn probe() -> PlatformInfo {
    PlatformInfo {
        backends: vec![process(), kvm(), sev_snp(), tdx(), sgx()],
    }
}

fn process() -> BackendStatus {
    BackendStatus {
        backend: BackendKind::Process,
        available: true,
        implemented: true,
        detail: "runs the exec as a child process; isolates nothing from the host (no attestation)"
            .into(),
    }
}

fn kvm() -> BackendStatus {
    let dev = Path::new("/dev/kvm");
    let (available, detail) = if !dev.exists() {
        (
            false,
            "/dev/kvm does not exist (no KVM module loaded, or not permitted in this VM)"
                .to_string(),
        )
    } else if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dev)
        .is_err()
    {
        (
            false,
            "/dev/kvm exists but cannot be opened read-write by this user".to_string(),
        )
    } else {
        let flavour = kvm_flavour();
        (
            true,
            format!(
                "/dev/kvm is usable ({flavour}); `keep run --backend kvm` runs workloads in a KVM Keep (no attestation; dirs and sockets served by the host, in clear)"
            ),
        )
    };
    BackendStatus {
        backend: BackendKind::Kvm,
        available,
        implemented: true,
        detail,
    }
}

/// `kvm_pvm` (pagetable-based virtualization inside a VM), `kvm_intel` or `kvm_amd`.
fn kvm_flavour() -> String {
    let modules = std::fs::read_to_string("/proc/modules").unwrap_or_default();
    for (module, text) in [
        (
            "kvm_pvm",
            "PVM: guest code runs at CPL3 and privileged instructions are emulated",
        ),
        ("kvm_intel", "Intel VT-x"),
        ("kvm_amd", "AMD-V"),
    ] {
        if modules
            .lines()
            .any(|l| l.split_whitespace().next() == Some(module))
            || Path::new("/sys/module").join(module).exists()
        {
            return format!("{module}: {text}");
        }
    }
    "hardware virtualization, module unknown".into()
}

fn sev_snp() -> BackendStatus {
    let guest = Path::new("/dev/sev-guest").exists();
    let tsm = Path::new("/sys/kernel/config/tsm/report").exists();
    let host = std::fs::read_to_string("/sys/module/kvm_amd/parameters/sev_snp")
        .map(|s| s.trim() == "Y" || s.trim() == "1")
        .unwrap_or(false);
    let (available, detail) = if host {
        (true, "kvm_amd reports sev_snp=Y: this host can launch SEV-SNP guests; backend not implemented yet".to_string())
    } else if guest || tsm {
        (true, "this machine is itself an SEV-SNP guest (/dev/sev-guest or configfs-tsm); backend not implemented yet".to_string())
    } else {
        (false, "no SEV-SNP: kvm_amd sev_snp is not enabled, and neither /dev/sev-guest nor /sys/kernel/config/tsm/report exists".to_string())
    };
    BackendStatus {
        backend: BackendKind::SevSnp,
        available,
        implemented: false,
        detail,
    }
}

fn tdx() -> BackendStatus {
    let host = std::fs::read_to_string("/sys/module/kvm_intel/parameters/tdx")
        .map(|s| s.trim() == "Y" || s.trim() == "1")
        .unwrap_or(false);
    let guest = Path::new("/dev/tdx_guest").exists();
    let (available, detail) = if host {
        (
            true,
            "kvm_intel reports tdx=Y; backend not implemented yet".to_string(),
        )
    } else if guest {
        (
            true,
            "this machine is itself a TDX guest (/dev/tdx_guest); backend not implemented yet"
                .to_string(),
        )
    } else {
        (
            false,
            "no TDX: kvm_intel tdx is not enabled and /dev/tdx_guest does not exist".to_string(),
        )
    };
    BackendStatus {
        backend: BackendKind::Tdx,
        available,
        implemented: false,
        detail,
    }
}

fn sgx() -> BackendStatus {
    let enclave = Path::new("/dev/sgx_enclave").exists();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "sgx"))
        })
        .unwrap_or(false);
    let (available, detail) = match (enclave, cpu) {
        (true, _) => (true, "/dev/sgx_enclave exists; backend not implemented yet".to_string()),
        (false, true) => (false, "the CPU reports sgx but /dev/sgx_enclave is missing (disabled in firmware or no driver)".to_string()),
        (false, false) => (false, "no SGX: the CPU does not report sgx and /dev/sgx_enclave does not exist".to_string()),
    };
    BackendStatus {
        backend: BackendKind::Sgx,
        available,
        implemented: false,
        detail,
    }
}
