//! Secrets from the tenant's sealed manifest: environment variables, or files in a
//! private directory in memory preopened read-only at `/secrets`.
//!
//! The directory is `/dev/shm/keep-secrets-<pid>-<random>` (the name is a contract
//! with keep-host's `secrets.rs`): created mode 0700, each file created 0600,
//! never on the host's disk. The exec removes it on every way it ends by itself (the
//! end of the run, the host going away, a panic); the host removes
//! `keep-secrets-<pid>-*` of an exec that ended any other way (killed for a limit, by
//! its tenant, or by a signal), before it reaps the exec, so the pid in the name is
//! still that exec's. On the process backend the host can read it (it can read the
//! exec's whole memory anyway); a KVM Keep has no file system yet, so file secrets
//! are refused there.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Mutex;

use keep_seal::SecretDelivery;
use keep_wire::{DirSpec, LaunchSpec};

/// The directory the workload sees.
const SECRETS_GUEST: &str = "/secrets";
/// Where the directory is made: memory, never the host's disk.
const SECRETS_PARENT: &str = "/dev/shm";

/// The start of the secrets directory's name for the exec with this pid.
fn prefix(pid: u32) -> String {
    format!("keep-secrets-{pid}-")
}

/// The secrets directory of this run, while it exists.
static DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Delivers the manifest's secrets into `spec` (env) and the secrets directory
/// (files).
pub fn deliver(m: &keep_seal::SealedManifest, spec: &mut LaunchSpec) -> Result<(), String> {
    let mut dir: Option<PathBuf> = None;
    for s in &m.secrets {
        let value = hex::decode(&s.value_hex).map_err(|_| format!("{} is not hex", s.name))?;
        let valid_name = !s.name.is_empty()
            && s.name.len() <= 128
            && s.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            && !s.name.starts_with('.');
        if !valid_name {
            return Err(format!("secret name {:?} is not allowed", s.name));
        }
        match s.delivery {
            SecretDelivery::Env => {
                let v = String::from_utf8(value)
                    .map_err(|_| format!("{} is not UTF-8 (needed for env)", s.name))?;
                spec.env.push((s.name.clone(), v));
            }
            SecretDelivery::File => {
                if crate::in_kvm_keep() {
                    return Err(format!(
                        "secret {} is a file, and a KVM Keep has no file system yet (deliver it with --secret-env)",
                        s.name
                    ));
                }
                let d = match &dir {
                    Some(d) => d.clone(),
                    None => {
                        let d = create_dir()?;
                        spec.dirs.push(DirSpec {
                            source: d.display().to_string(),
                            guest_path: SECRETS_GUEST.into(),
                            writable: false,
                        });
                        dir = Some(d.clone());
                        d
                    }
                };
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(d.join(&s.name))
                    .and_then(|mut f| f.write_all(&value))
                    .map_err(|e| format!("cannot write {}: {e}", s.name))?;
            }
        }
    }
    Ok(())
}

/// Creates the private directory and registers it for [`remove`].
fn create_dir() -> Result<PathBuf, String> {
    let d = tempfile::Builder::new()
        .prefix(&prefix(std::process::id()))
        .permissions(std::fs::Permissions::from_mode(0o700))
        .disable_cleanup(true)
        .tempdir_in(SECRETS_PARENT)
        .map_err(|e| format!("cannot create the secrets directory: {e}"))?;
    let path = d.path().to_path_buf();
    if let Ok(mut slot) = DIR.lock() {
        *slot = Some(path.clone());
    }
    Ok(path)
}

/// Removes the secrets directory, if there is one (idempotent).
pub fn remove() {
    let dir = match DIR.lock() {
        Ok(mut d) => d.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    if let Some(d) = dir {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keep_seal::{SealedManifest, Secret};

    #[test]
    fn files_are_private_and_removed() {
        let m = SealedManifest {
            secrets: vec![Secret {
                name: "token".into(),
                value_hex: hex::encode("s3cret"),
                delivery: SecretDelivery::File,
            }],
            ..SealedManifest::default()
        };
        let mut spec = LaunchSpec::default();
        deliver(&m, &mut spec).unwrap();
        let dir = PathBuf::from(&spec.dirs[0].source);
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.starts_with(&format!("keep-secrets-{}-", std::process::id())));
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("token")), 0o600);
        assert_eq!(std::fs::read(dir.join("token")).unwrap(), b"s3cret");
        remove();
        assert!(!dir.exists());
        remove();
    }
}
