//! The WASI context of a workload, built only from the launch spec: the tenant's
//! arguments and environment (never the host's), stdio, preopened directories and
//! the network addresses the manifest declares.

use std::net::{IpAddr, SocketAddr};

use keep_wire::{LaunchSpec, SocketKind, StdioTarget};
use wasmtime::Result;
use wasmtime::error::Context as _;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Starts a builder with args, env, stdio and preopened directories. With
/// `socket_holder`, each declared socket also gets a hidden read-only preopen of that
/// (empty) directory after the real ones: see `p1_extras`.
pub fn builder(
    spec: &LaunchSpec,
    socket_holder: Option<&std::path::Path>,
) -> Result<WasiCtxBuilder> {
    let mut b = WasiCtxBuilder::new();
    b.arg(&spec.program_name);
    b.args(&spec.args);
    b.envs(&spec.env);
    if spec.stdio[0] == StdioTarget::Inherit {
        if crate::in_kvm_keep() {
            // wasmtime-wasi reads an inherited stdin on a worker thread; the Keep
            // has one thread, so stdin is read in place (the host blocks until
            // there is input), and sleeps happen on this thread too.
            use std::os::fd::AsFd;
            let stdin = std::io::stdin()
                .as_fd()
                .try_clone_to_owned()
                .context("cannot open stdin")?;
            b.stdin(wasmtime_wasi::cli::InputFile::new(std::fs::File::from(
                stdin,
            )));
        } else {
            b.inherit_stdin();
        }
    }
    if crate::in_kvm_keep() {
        b.allow_blocking_current_thread(true);
    }
    if spec.stdio[1] == StdioTarget::Inherit {
        b.inherit_stdout();
    }
    if spec.stdio[2] == StdioTarget::Inherit {
        b.inherit_stderr();
    }
    // Attested launches: stdin is the tenant's sealed input, opened inside the exec.
    if let Some(stdin) = crate::attested::take_stdin() {
        b.stdin(wasmtime_wasi::cli::InputFile::new(stdin));
    }
    // Attested launches capture output inside the exec and seal it for the tenant.
    if let Some((out, err)) = crate::attested::take_capture() {
        b.stdout(wasmtime_wasi::cli::OutputFile::new(out));
        b.stderr(wasmtime_wasi::cli::OutputFile::new(err));
    }
    // Attested launches in a KVM Keep: sealed in place (one thread).
    if let Some(s) = crate::sealed_stdio::take() {
        b.stdin(s.stdin);
        b.stdout(s.stdout);
        b.stderr(s.stderr);
    }
    for dir in &spec.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&dir.source, &dir.guest_path, perms)
            .with_context(|| {
                format!(
                    "cannot open directory {} for {}",
                    dir.source, dir.guest_path
                )
            })?;
    }
    if let Some(holder) = socket_holder {
        for s in &spec.sockets {
            b.preopened_dir(
                holder,
                format!("/.keep-socket/{}", s.name),
                FsPerms::ReadOnly,
            )
            .context("cannot prepare the socket descriptors")?;
        }
    } else {
        allow_declared_network(&mut b, spec);
    }
    Ok(b)
}

/// Preview 2 components get TCP only to and from the sockets the manifest declares.
///
/// wasmtime checks an outgoing connection twice: the implicit bind of the local end
/// (as a bind to the unspecified address, port 0) and the remote address. So a
/// declared connect also allows binding the unspecified address of its family to an
/// ephemeral port; a component could then listen there, on a port it does not choose.
/// Declared listen addresses are allowed exactly, for bind and then for listen,
/// and accept connections from any peer; nothing else is.
fn allow_declared_network(b: &mut WasiCtxBuilder, spec: &LaunchSpec) {
    let mut allowed: Vec<(SocketAddr, SocketKind)> = Vec::new();
    for s in &spec.sockets {
        if let Some(ip) = parse_ip(&s.host) {
            allowed.push((SocketAddr::new(ip, s.port), s.kind));
        }
    }
    if allowed.is_empty() {
        return;
    }
    b.allow_tcp(true);
    b.allow_udp(false);
    b.socket_addr_check(move |addr, usage| {
        let ok = allowed.iter().any(|(a, kind)| match (kind, usage) {
            (SocketKind::Listen, SocketAddrUse::TcpBind) => *a == addr,
            // start-listen checks the bound address (a declared port 0 was bound to
            // an ephemeral port).
            (SocketKind::Listen, SocketAddrUse::TcpListen) => {
                a.ip() == addr.ip() && (a.port() == addr.port() || a.port() == 0)
            }
            // Accepting: `addr` is the peer's. A declared listener takes connections
            // from anywhere (wasmtime resets the ones this refuses).
            (SocketKind::Listen, SocketAddrUse::TcpAccept) => true,
            (SocketKind::Connect, SocketAddrUse::TcpConnect) => *a == addr,
            (SocketKind::Connect, SocketAddrUse::TcpBind) => {
                addr.port() == 0 && addr.ip().is_unspecified() && addr.is_ipv4() == a.is_ipv4()
            }
            _ => false,
        });
        Box::pin(async move { ok })
    });
}

/// An IP literal, or `localhost`; the exec does no name lookups.
pub fn parse_ip(host: &str) -> Option<IpAddr> {
    if host == "localhost" {
        return Some(IpAddr::from([127, 0, 0, 1]));
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}
