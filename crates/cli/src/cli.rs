//! Command-line syntax.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use keep_host::BackendKind;

/// Run WebAssembly workloads in Keeps: isolated, measured environments on hosts
/// you do not have to trust.
#[derive(Debug, Parser)]
#[command(name = "keep", version)]
#[command(
    after_help = "Start with `keep run examples/hello.wasm`, then `keep init` to write a Keep.toml.\n\
Exit statuses of `keep run`: the workload's own code (0-255); 125 keep could not run it;\n\
134 trap; 151 memory, 152 cpu, 153 wall-clock, 154 output, 155 open-files limit.\n\
Exit statuses of `keep verify`: 0 accepted; 10 not genuine; 11 genuine but refused by policy;\n\
125 keep could not read its input."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a WASI workload (preview 1 module, 0.2 or 0.3 component) in a Keep.
    Run(Box<RunArgs>),
    /// Write a starter Keep.toml.
    Init(InitArgs),
    /// Facts about this machine.
    #[command(subcommand)]
    Platform(PlatformCommand),
    /// The launch digest of a Keep (SHA-384 over shim, exec and boot parameters),
    /// computed offline: what a Keep launched with these settings measures as.
    Measure(MeasureArgs),
    /// Verify attestation evidence (SEV-SNP report, TDX or SGX quote) offline,
    /// against a policy.
    Verify(Box<VerifyArgs>),
    /// Deploy a workload to a host agent: attest the Keep, then release the workload
    /// and secrets sealed to it (trust states 0 -> 1 -> 2 -> 3).
    Deploy(Box<DeployArgs>),
    /// List your Keeps on a host agent.
    Ps(RemoteArgs),
    /// Terminate one of your Keeps on a host agent.
    Kill(KillArgs),
    /// What the host agent recorded about one of your Keeps (states, relayed sizes,
    /// how it ended; never its output, which only `keep deploy` can decrypt).
    Logs(KillArgs),
    /// The host owner's side.
    #[command(subcommand)]
    Host(HostCommand),
}

#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Run the host agent (HTTP API) from a host.toml.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The host configuration (TOML).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// The host agent's URL, e.g. http://127.0.0.1:8400.
    #[arg(long, value_name = "URL", env = "KEEP_HOST")]
    pub host: String,
    /// Your bearer token (or KEEP_TOKEN); not needed with a client certificate.
    #[arg(long, value_name = "TOKEN", env = "KEEP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Your client certificate chain (PEM) for mTLS to an https:// host (or KEEP_CERT).
    #[arg(long, value_name = "PEM", env = "KEEP_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM, or KEEP_KEY).
    #[arg(long, value_name = "PEM", env = "KEEP_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// CA certificate(s) (PEM) to trust for an https:// URL, in addition to the
    /// system's root certificates (or KEEP_CA).
    #[arg(long, value_name = "PEM", env = "KEEP_CA")]
    pub ca: Option<PathBuf>,
    /// Give up when the agent sends nothing (no answer, output or keepalive) for this
    /// long, e.g. 30s; a deploy then names its state and destroys the Keep.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub idle_timeout: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The Keep's id (from `keep ps`).
    pub id: String,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
keep deploy --host http://127.0.0.1:8400 --token $T --policy dev-policy.toml app.wasm\n  \
keep deploy --host URL --token T --secret api_key=@key.txt --secret-env DB_PASS=@pass.txt app.wasm -- --flag\n  \
keep deploy --host https://host:8400 --cert alice.pem --key alice.key --policy p.toml app.wasm\n  \
echo input | keep deploy --host URL --token T --policy p.toml app.wasm   # stdin is sealed to the Keep\n\n\
Exit status: the workload's own (0-255); 10 evidence not genuine; 11 evidence refused by\n\
the policy; 125 any other failure (the state it happened in is named); 134 trap; 151-155 limits.")]
pub struct DeployArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The workload: a .wasm core module (WASI preview 1) or component.
    pub workload: PathBuf,
    /// Arguments for the workload (after `--`).
    #[arg(last = true)]
    pub args: Vec<String>,
    /// Keep.toml for args, env and limits (sealed with the workload).
    #[arg(long, short = 'm', value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Attestation policy (TOML); default: strict, which refuses the insecure attester.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// A secret delivered as the file /secrets/NAME: NAME=@FILE or NAME=VALUE.
    #[arg(long, value_name = "NAME=@FILE")]
    pub secret: Vec<String>,
    /// A secret delivered as the environment variable NAME: NAME=@FILE or NAME=VALUE.
    #[arg(long, value_name = "NAME=@FILE")]
    pub secret_env: Vec<String>,
    /// Set an environment variable of the workload.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The workload digest the Keep must check (sha384 hex); default: the file's.
    #[arg(long, value_name = "HEX")]
    pub workload_sha384: Option<String>,
    /// Limits asked of the host (it clamps them to the owner's): memory, e.g. 256MiB.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU time, e.g. 10s.
    #[arg(long, value_name = "DURATION")]
    pub cpu: Option<String>,
    /// Wall-clock time from the Keep's creation, e.g. 1m.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Sealed output bytes the host relays at most, e.g. 64MiB.
    #[arg(long, value_name = "SIZE")]
    pub max_output: Option<String>,
    /// Do not forward this terminal's stdin (sealed) to the workload: it reads EOF.
    #[arg(long)]
    pub no_stdin: bool,
    /// Where the Keep runs, among the backends the host owner allows: process or
    /// kvm (default: the host's first). On kvm the insecure evidence carries the
    /// launch digest (`keep measure --memory M`), as the host reports it.
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<String>,
}

#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// Which Keep: kvm (the process backend has no launch digest).
    #[arg(long, value_parser = backend_kind(), default_value = "kvm")]
    pub backend: BackendKind,
    /// The workload memory limit, as for `keep run --memory` (it fixes the guest
    /// memory, which is measured): guest memory = this + the runtime's memory;
    /// default 768MiB.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// The module `keep run --backend kvm` will run: its size sets the runtime's
    /// memory (256 MiB + 30x the module, for compiling it), as keep run does.
    /// Without it, the runtime gets 256 MiB (an attested Keep, sized before its
    /// workload arrives).
    #[arg(long, value_name = "FILE")]
    pub workload: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum PlatformCommand {
    /// Which backends work here, and why the others do not.
    Info(JsonArg),
    /// Start a probe in the jail a Keep's process gets and show how each way out
    /// (host files, network, processes, privileges) was stopped; exit 1 if one
    /// was not.
    JailProbe(JailProbeArgs),
}

#[derive(Debug, Args)]
pub struct JailProbeArgs {
    /// The Keep whose jail to probe: process (the exec's) or kvm (the VMM's).
    #[arg(long, value_parser = backend_kind(), default_value = "process")]
    pub backend: BackendKind,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `--backend`'s values: keep-host's one list of kinds, with their help.
fn backend_kind() -> impl clap::builder::TypedValueParser<Value = BackendKind> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        BackendKind::CHOICES.map(|k| PossibleValue::new(k.name()).help(k.about())),
    )
    // Only the names above get here.
    .map(|name| BackendKind::from_name(&name).unwrap_or(BackendKind::Process))
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  keep run examples/hello.wasm\n  \
keep run --dir ./data::/data --env NAME=world app.wasm -- --verbose\n  \
keep run --manifest Keep.toml --memory 256MiB --cpu 10s --timeout 1m app.wasm\n  \
keep run --stats --json app.wasm")]
pub struct RunArgs {
    /// The workload: a .wasm core module (WASI preview 1) or component (preview 2).
    pub workload: PathBuf,
    /// Arguments for the workload (after `--`); they replace the manifest's `args`.
    #[arg(last = true)]
    pub args: Vec<String>,
    /// Keep.toml or Enarx.toml describing args, env, stdio, dirs, sockets and limits.
    #[arg(long, short = 'm', value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Where the Keep runs.
    #[arg(long, value_parser = backend_kind(), default_value = "process")]
    pub backend: BackendKind,
    /// Set an environment variable of the workload (the host's are never passed).
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Preopen a host directory read-write: HOST::GUEST (or HOST, seen as the same path).
    #[arg(long = "dir", value_name = "HOST::GUEST")]
    pub dirs: Vec<String>,
    /// Preopen a host directory read-only: HOST::GUEST.
    #[arg(long = "ro-dir", value_name = "HOST::GUEST")]
    pub ro_dirs: Vec<String>,
    /// Cap on the workload's linear memory and tables, e.g. 256MiB (default
    /// 768MiB). The Keep also gets 256 MiB + 30x the module's size for the runtime
    /// and compiling; the compiler may use both.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU time budget, e.g. 10s or 500ms.
    #[arg(long, value_name = "DURATION")]
    pub cpu: Option<String>,
    /// Wall-clock time limit, e.g. 30s or 2m.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Cap on bytes written to stdout and stderr together, e.g. 1GiB.
    #[arg(long, value_name = "SIZE")]
    pub max_output: Option<String>,
    /// Cap on files and sockets the workload may hold open at once.
    #[arg(long, value_name = "N")]
    pub max_files: Option<u32>,
    /// Compile the workload afresh instead of reusing compiled code cached on this
    /// host (the cache is keyed by the workload's digest and the engine's settings).
    #[arg(long)]
    pub no_cache: bool,
    /// Run the Keep's process without its jail (namespaces, an empty root, no
    /// privileges), with this user's rights: for comparison and debugging.
    #[arg(long)]
    pub no_jail: bool,
    /// Print peak memory, CPU time and wall time on stderr when the workload ends.
    #[arg(long)]
    pub stats: bool,
    /// Report the outcome (and stats) as one JSON object on stderr instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Where to write it.
    #[arg(default_value = "Keep.toml")]
    pub path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Evidence comes as one bundle, or as raw files:\n  \
keep verify evidence.cbor\n  \
keep verify --snp-report report.bin --vcek vcek.der [--chain ask_ark.pem] [--crl crl.der]\n  \
keep verify --quote quote.bin --collateral collateral.json\n\n\
Judge at another moment (certificates and collateral expire) and against a policy:\n  \
keep verify --now 2025-06-01 --policy policy.toml --snp-report r.bin --vlek vlek.der\n\n\
Every failed check and policy rule is listed by name. Exit status: 0 accepted,\n\
10 not genuine, 11 genuine but refused by the policy, 125 unreadable input.")]
pub struct VerifyArgs {
    /// An evidence bundle (CBOR, see docs/attestation.md).
    #[arg(value_name = "BUNDLE", conflicts_with_all = ["snp_report", "quote"])]
    pub bundle: Option<PathBuf>,
    /// A raw SEV-SNP attestation report (1184 bytes).
    #[arg(long, value_name = "FILE", requires = "vcek", conflicts_with = "quote")]
    pub snp_report: Option<PathBuf>,
    /// The VCEK or VLEK certificate that signed the report (DER or PEM).
    #[arg(long, visible_alias = "vlek", value_name = "FILE")]
    pub vcek: Option<PathBuf>,
    /// PEM with the ASK or ASVK (and optionally the ARK); by default the ones built in.
    #[arg(long, value_name = "PEM")]
    pub chain: Option<PathBuf>,
    /// An AMD CRL (DER or PEM); may be repeated. Each is used when the chain's ARK
    /// (or ASK) issued it and reported as not applicable otherwise; without one,
    /// revocation is reported as not checked.
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    /// A raw Intel DCAP quote: TDX (v4, v5) or SGX (v3).
    #[arg(long, value_name = "FILE")]
    pub quote: Option<PathBuf>,
    /// DCAP collateral in the PCCS QuoteCollateralV3 JSON layout.
    #[arg(long, value_name = "JSON", requires = "quote")]
    pub collateral: Option<PathBuf>,
    /// Policy file (TOML); without it the strict default applies (see docs/attestation.md).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The moment to judge validity at: RFC 3339, a date, or Unix seconds. Default: now.
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Require this report_data (hex), e.g. the nonce you sent; overrides the policy.
    #[arg(long, value_name = "HEX")]
    pub report_data: Option<String>,
    /// Also trust this root certificate (an AMD ARK or Intel root, DER or PEM), in
    /// addition to the pinned ones. Only for test platforms.
    #[arg(long, value_name = "FILE")]
    pub trust_anchor: Vec<PathBuf>,
    /// Write a signed EAR (attestation result, JWT) to this file.
    #[arg(long, value_name = "FILE", requires = "ear_key")]
    pub ear: Option<PathBuf>,
    /// The verifier's signing key for --ear (PKCS#8 PEM, EC P-256 or P-384).
    #[arg(long, value_name = "PEM")]
    pub ear_key: Option<PathBuf>,
    /// Write the evidence given as raw files as one bundle to this file.
    #[arg(long, value_name = "FILE")]
    pub save_bundle: Option<PathBuf>,
    /// List passed checks too.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Print the whole result as JSON.
    #[arg(long)]
    pub json: bool,
}
