//! The jail's inner stage: PID 1 of the Keep's PID namespace.
//!
//! Builds the new root (an empty tmpfs with a fresh `/proc`, the plan's bind
//! mounts, a private `/dev/shm`), pivots into it, makes it read-only, sets
//! no-new-privs, drops every capability, says so on fd 6, and replaces itself
//! with the program (fd 5).

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use std::os::fd::AsRawFd;

use rustix::fs::{Mode, OFlags, StatVfsMountFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::{CapabilitiesSecureBits, CapabilitySet};

use super::outer::{failed, report};
use super::{
    Bind, JailPlan, JailStatus, LANDLOCK, LAYERS, NET_NS, NPROC, PIDS_CGROUP, PLAN_ENV, PROGRAM_FD,
    SECCOMP,
};

/// Runs the inner stage: returns only if the program could not be started.
pub fn inner_main() -> i32 {
    if rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .is_err()
    {
        return failed("parent-death signal", "cannot be set");
    }
    let plan: JailPlan = match std::env::var(PLAN_ENV)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
    {
        Some(p) => p,
        None => return failed("plan", "missing or malformed"),
    };
    if let Err((layer, error)) = build(&plan) {
        return failed(layer, &error);
    }
    let landlocked = match landlock(&plan) {
        Ok(enforced) => enforced,
        Err(e) => return failed(LANDLOCK, &e),
    };
    let layers: Vec<String> = LAYERS
        .iter()
        .filter(|l| match **l {
            NET_NS => plan.isolate_network,
            LANDLOCK => landlocked,
            // Root's processes are exempt: the pids cgroup (the host's) counts.
            NPROC => plan.host_uid != 0,
            PIDS_CGROUP | SECCOMP => false,
            _ => true,
        })
        .map(|l| l.to_string())
        .collect();
    report(&JailStatus::Built { layers });
    let Some((argv0, args)) = plan.args.split_first() else {
        return failed("plan", "no program arguments");
    };
    let error = Command::new(format!("/proc/self/fd/{PROGRAM_FD}"))
        .arg0(argv0)
        .args(args)
        .env_clear()
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .exec();
    eprintln!("keep: cannot start the Keep's program in its jail: {error}");
    125
}

type Step = Result<(), (&'static str, String)>;

fn step<T>(layer: &'static str, r: rustix::io::Result<T>) -> Result<T, (&'static str, String)> {
    r.map_err(|e| (layer, e.to_string()))
}

fn build(plan: &JailPlan) -> Step {
    const ROOT: &str = "pivot_root into an empty tmpfs";
    step(
        "mount namespace",
        rustix::mount::mount_change(
            "/",
            MountPropagationFlags::REC | MountPropagationFlags::PRIVATE,
        ),
    )?;
    let root = ["/tmp", "/mnt", "/run"]
        .into_iter()
        .find(|d| Path::new(d).is_dir())
        .ok_or((
            ROOT,
            "no /tmp, /mnt or /run to build the root on".to_string(),
        ))?;
    // The sources are opened before the new root hides what is beneath it (a
    // directory under /tmp, say), and bound through their descriptors.
    let (links, binds): (Vec<&Bind>, Vec<&Bind>) =
        plan.binds.iter().partition(|b| b.symlink.is_some());
    let sources = binds
        .iter()
        .map(|b| {
            rustix::fs::open(&b.source, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| (ROOT, format!("{}: {e}", b.source)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let safe = MountFlags::NOSUID | MountFlags::NODEV;
    step(
        ROOT,
        rustix::mount::mount("tmpfs", root, "tmpfs", safe, c"size=1m,mode=0755"),
    )?;
    for dir in ["proc", "dev", "dev/shm", "tmp", "dirs", ".old"] {
        step(
            ROOT,
            rustix::fs::mkdir(format!("{root}/{dir}"), Mode::from(0o755)),
        )?;
    }
    for link in links {
        let target = format!("{root}{}", link.target);
        if let (Some(to), Some(parent)) = (&link.symlink, Path::new(&target).parent()) {
            std::fs::create_dir_all(parent).map_err(|e| (ROOT, e.to_string()))?;
            std::os::unix::fs::symlink(to, &target)
                .map_err(|e| (ROOT, format!("{target}: {e}")))?;
        }
    }
    for (bind, fd) in binds.into_iter().zip(&sources) {
        let by_fd = format!("/proc/self/fd/{}", fd.as_raw_fd());
        mount_bind(root, bind, &by_fd)?;
    }
    drop(sources);
    step(
        "pid namespace",
        rustix::mount::mount(
            "proc",
            format!("{root}/proc"),
            "proc",
            safe | MountFlags::NOEXEC,
            None,
        ),
    )?;
    step(
        ROOT,
        rustix::mount::mount(
            "tmpfs",
            format!("{root}/dev/shm"),
            "tmpfs",
            safe | MountFlags::NOEXEC,
            c"size=256m,mode=1777",
        ),
    )?;
    step(
        ROOT,
        rustix::mount::mount(
            "tmpfs",
            format!("{root}/tmp"),
            "tmpfs",
            safe | MountFlags::NOEXEC,
            c"size=16m,mode=1777",
        ),
    )?;
    step(
        ROOT,
        rustix::process::pivot_root(root, format!("{root}/.old")),
    )?;
    step(ROOT, rustix::process::chdir("/"))?;
    step(ROOT, rustix::mount::unmount("/.old", UnmountFlags::DETACH))?;
    step(ROOT, rustix::fs::rmdir("/.old"))?;
    step(
        ROOT,
        rustix::mount::mount_remount("/", safe | MountFlags::RDONLY, c""),
    )?;
    step("no-new-privs", rustix::thread::set_no_new_privs(true))?;
    drop_capabilities()
}

/// Bind-mounts a host path at its target in the new root (read-only unless
/// writable, keeping the flags the host's mount has).
fn mount_bind(root: &str, bind: &Bind, source: &str) -> Step {
    const LAYER: &str = "pivot_root into an empty tmpfs";
    let target = format!("{root}{}", bind.target);
    if bind.file {
        std::fs::File::create(&target).map_err(|e| (LAYER, format!("{target}: {e}")))?;
    } else {
        std::fs::create_dir_all(&target).map_err(|e| (LAYER, format!("{target}: {e}")))?;
    }
    rustix::mount::mount_bind_recursive(source, &target)
        .map_err(|e| (LAYER, format!("{}: {e}", bind.source)))?;
    if !bind.writable {
        // A remount must keep the locked flags of the mount it came from.
        let have = rustix::fs::statvfs(&target)
            .map(|s| s.f_flag)
            .unwrap_or(StatVfsMountFlags::empty());
        let mut flags = MountFlags::BIND | MountFlags::RDONLY;
        for (st, ms) in [
            (StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
            (StatVfsMountFlags::NODEV, MountFlags::NODEV),
            (StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
            (StatVfsMountFlags::NOATIME, MountFlags::NOATIME),
            (StatVfsMountFlags::NODIRATIME, MountFlags::NODIRATIME),
            (StatVfsMountFlags::RELATIME, MountFlags::RELATIME),
        ] {
            if have.contains(st) {
                flags |= ms;
            }
        }
        rustix::mount::mount_remount(&target, flags, c"")
            .map_err(|e| (LAYER, format!("{} read-only: {e}", bind.source)))?;
    }
    Ok(())
}

/// Root in the namespace, and nothing from it: no capability survives `exec`
/// (securebits NO_ROOT, locked), the bounding set is empty, none is ambient.
fn drop_capabilities() -> Step {
    const LAYER: &str = "capabilities dropped";
    let bits = CapabilitiesSecureBits::NO_ROOT
        | CapabilitiesSecureBits::NO_ROOT_LOCKED
        | CapabilitiesSecureBits::NO_SETUID_FIXUP
        | CapabilitiesSecureBits::NO_SETUID_FIXUP_LOCKED
        | CapabilitiesSecureBits::NO_CAP_AMBIENT_RAISE
        | CapabilitiesSecureBits::NO_CAP_AMBIENT_RAISE_LOCKED;
    step(LAYER, rustix::thread::set_capabilities_secure_bits(bits))?;
    step(LAYER, rustix::thread::clear_ambient_capability_set())?;
    for cap in CapabilitySet::all().iter() {
        match rustix::thread::remove_capability_from_bounding_set(cap) {
            // A capability this kernel does not know.
            Ok(()) | Err(rustix::io::Errno::INVAL) => {}
            Err(e) => return Err((LAYER, e.to_string())),
        }
    }
    Ok(())
}

/// Landlock, where the kernel has it (best effort: what it lacks is left out):
/// reading beneath the root (it holds only what the jail put there), writing
/// only beneath the writable binds, `/tmp` and `/dev/shm`; TCP bind and connect
/// only on the declared ports (ABI 4); no signals to processes outside and no
/// abstract UNIX sockets (ABI 6). Executing only the program (run through its
/// descriptor) and, for a dynamically linked one, the libraries; nothing beneath
/// the root or a writable place. Returns whether it is enforced.
fn landlock(plan: &JailPlan) -> Result<bool, String> {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
        RulesetCreatedAttr, RulesetStatus, Scope,
    };
    let abi = ABI::V6;
    let handled = AccessFs::from_all(abi);
    let read = AccessFs::from_read(abi) & !AccessFs::Execute;
    let mut writable: Vec<String> = vec!["/tmp".into(), "/dev/shm".into()];
    writable.extend(
        plan.binds
            .iter()
            .filter(|b| b.writable && b.symlink.is_none())
            .map(|b| b.target.clone()),
    );
    let err = |e: landlock::RulesetError| e.to_string();
    let mut ruleset = Ruleset::default()
        .handle_access(handled)
        .map_err(err)?
        .handle_access(AccessNet::from_all(abi))
        .map_err(err)?
        .scope(Scope::from_all(abi))
        .map_err(err)?
        .create()
        .map_err(err)?
        .add_rule(PathBeneath::new(
            PathFd::new("/").map_err(|e| e.to_string())?,
            read,
        ))
        .map_err(err)?;
    // The program, run through its descriptor (its file lies outside the root).
    // A sealed memfd (the agent's exec image) has no path Landlock could hold a
    // rule for (EBADFD), and it restricts no access to it either.
    let program = format!("/proc/self/fd/{PROGRAM_FD}");
    let is_memfd =
        std::fs::read_link(&program).is_ok_and(|t| t.to_string_lossy().starts_with("/memfd:"));
    if !is_memfd {
        let fd = PathFd::new(&program).map_err(|e| format!("{program}: {e}"))?;
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, AccessFs::ReadFile | AccessFs::Execute))
            .map_err(err)?;
    }
    // A dynamically linked program's loader and libraries (the VMM's).
    for lib in plan
        .binds
        .iter()
        .filter(|b| b.library && b.symlink.is_none())
    {
        let fd = PathFd::new(&lib.target).map_err(|e| format!("{}: {e}", lib.target))?;
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, read | AccessFs::Execute))
            .map_err(err)?;
    }
    // Written, never executed: the writable binds keep their host mount's flags
    // (no noexec), so Landlock is what stops running a file put there.
    for path in &writable {
        let fd = PathFd::new(path).map_err(|e| format!("{path}: {e}"))?;
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, handled & !AccessFs::Execute))
            .map_err(err)?;
    }
    for port in &plan.tcp_ports {
        ruleset = ruleset
            .add_rule(NetPort::new(*port, AccessNet::from_all(abi)))
            .map_err(err)?;
    }
    let status = ruleset.restrict_self().map_err(err)?;
    Ok(status.ruleset != RulesetStatus::NotEnforced)
}
