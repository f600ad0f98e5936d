//! A pids cgroup per jailed Keep: no fork bombs, root host or not (the kernel
//! exempts root's processes from `RLIMIT_NPROC`).
//!
//! The host makes the group beneath its own (cgroup v2 where the pids controller
//! is enabled for its children, else the v1 pids hierarchy), sets `pids.max`; the
//! jail's outer stage joins it first thing, so everything in the jail is counted.
//! The group is removed when the Keep has been reaped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A Keep's pids cgroup, removed on drop (its processes must have ended).
#[derive(Debug)]
pub(crate) struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    /// A new group allowing `max` tasks, or None where the host has no pids
    /// controller this process may use.
    pub(crate) fn create(max: u64) -> Option<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let parent = parent()?;
        let dir = parent.join(format!(
            "keep-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir).ok()?;
        let group = Self { dir };
        std::fs::write(group.dir.join("pids.max"), max.to_string()).ok()?;
        Some(group)
    }

    /// The file a process writes "0" to, to join.
    pub(crate) fn procs(&self) -> String {
        self.dir.join("cgroup.procs").to_string_lossy().into_owned()
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Where this process's pids groups may go: its own v2 group if it delegates
/// the pids controller, else its group in the v1 pids hierarchy.
fn parent() -> Option<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mut v2 = None;
    let mut v1 = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount = left.split_whitespace().nth(4)?;
        let mut r = right.split_whitespace();
        let fstype = r.next()?;
        let options = r.nth(1).unwrap_or("");
        if fstype == "cgroup2" && v2.is_none() {
            v2 = Some(PathBuf::from(mount));
        } else if fstype == "cgroup" && options.split(',').any(|o| o == "pids") {
            v1 = Some(PathBuf::from(mount));
        }
    }
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (id, controllers, path) = (f.next()?, f.next()?, f.next()?);
        let rel = path.trim_start_matches('/');
        if id == "0" && controllers.is_empty() {
            if let Some(m) = &v2 {
                let dir = m.join(rel);
                if delegates_pids(&dir) {
                    return Some(dir);
                }
            }
        } else if controllers.split(',').any(|c| c == "pids")
            && let Some(m) = &v1
        {
            return Some(m.join(rel));
        }
    }
    None
}

fn delegates_pids(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.subtree_control"))
        .is_ok_and(|s| s.split_whitespace().any(|c| c == "pids"))
}
