//! The exec and what the host runs, attacked through the real binaries (`keep run`,
//! `keep host serve` on loopback, `keep deploy`): secret files are private and gone
//! after a limit or a kill, the exec dumps no core, inherits no descriptor of its
//! host, dies with its host, and is never taken from a file someone put in a
//! directory; directories others can write are refused.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{assert_one_line, fixture, stderr, stdout};

const ALICE: &str = "alice-token-0123456789";

/// The `keep` binary.
fn keep_bin() -> &'static str {
    env!("CARGO_BIN_EXE_keep")
}

/// The exec cache the other CLI tests share.
fn shared_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("keep-cache")
}

/// `keep ARGS` started through `sh -c "PRELUDE; exec WRAPPER keep ARGS"`, so that a
/// test can set limits, open descriptors or drop capabilities in the process that
/// becomes `keep`.
fn keep_via_sh(prelude: &str, wrapper: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{prelude}\nexec {wrapper} \"$0\" \"$@\""))
        .arg(keep_bin())
        .args(args)
        .env("KEEP_CACHE_DIR", shared_cache())
        .stdin(Stdio::null());
    cmd
}

struct Agent {
    child: Child,
    url: String,
    addr: String,
    dir: tempfile::TempDir,
    log: Arc<Mutex<String>>,
}

impl Agent {
    /// `keep host serve` with its own directory as the working directory, after
    /// `prelude` (shell) in the same process, with `data_dir` (default: `data` in
    /// its directory, which does not exist yet).
    /// An agent whose Keeps run without the jail: these tests check what the
    /// exec does for itself and what the host does around it (a Keep the host
    /// cannot jail has these and nothing more; `jailed_secrets_never_reach_the_hosts_dev_shm`
    /// is the jailed case).
    fn start(prelude: &str, data_dir: Option<&Path>) -> Agent {
        Self::start_wrapped(prelude, "", data_dir)
    }

    fn start_wrapped(prelude: &str, wrapper: &str, data_dir: Option<&Path>) -> Agent {
        Self::start_jailed(prelude, wrapper, data_dir, "off")
    }

    fn start_jailed(prelude: &str, wrapper: &str, data_dir: Option<&Path>, jail: &str) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let data = data_dir.map_or_else(|| dir.path().join("data"), Path::to_path_buf);
        let config = dir.path().join("host.toml");
        std::fs::write(
            &config,
            format!(
                r#"listen = "127.0.0.1:0"
insecure_http = true
data_dir = "{}"
max_keeps = 8
jail = "{jail}"
[limits]
memory = "512MiB"
wall = "60s"
output = "16MiB"
[[tenant]]
name = "alice"
token = "{ALICE}"
"#,
                data.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("dev-policy.toml"),
            "allow_insecure = true\n",
        )
        .unwrap();
        let config = config.display().to_string();
        let mut child = keep_via_sh(prelude, wrapper, &["host", "serve", "--config", &config])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the agent");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let mut url = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if let Some(rest) = line.strip_prefix("keep host: listening on ") {
                url = Some(rest.split(' ').next().unwrap().to_string());
                break;
            }
        }
        let url = url.unwrap_or_else(|| panic!("the agent did not start: {}", log.lock().unwrap()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let addr = url.trim_start_matches("http://").to_string();
        Agent {
            child,
            url,
            addr,
            dir,
            log,
        }
    }

    fn policy(&self) -> String {
        self.dir
            .path()
            .join("dev-policy.toml")
            .display()
            .to_string()
    }

    /// `keep deploy` (as alice, insecure evidence allowed), started.
    fn deploy(&self, args: &[&str]) -> Child {
        Command::new(keep_bin())
            .args(["deploy", "--host", &self.url, "--token", ALICE])
            .args(["--policy", &self.policy()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(keep_bin())
            .args(args)
            .args(["--host", &self.url, "--token", ALICE])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// One raw HTTP/1.1 request as alice; returns status and body.
    fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ALICE}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out
            .split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// An empty Keep (an exec waiting for its challenge); returns its exec's pid.
    fn empty_keep(&self) -> u32 {
        let before = children(self.child.id());
        let (status, body) = self.http("POST", "/v1/keeps", "{}");
        assert_eq!(status, 201, "{body}");
        let new = wait_for("a new exec", || {
            children(self.child.id())
                .into_iter()
                .find(|p| !before.contains(p))
        });
        // Started: its image is the exec's, not the agent's any more.
        wait_for("the exec to start", || {
            (std::fs::read_link(format!("/proc/{new}/exe")).ok()?
                != std::fs::read_link(format!("/proc/{}/exe", self.child.id())).ok()?)
            .then_some(())
        });
        new
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// `GET /v1/keeps` (alice's).
    fn keeps(&self) -> String {
        self.http("GET", "/v1/keeps", "").1
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Child processes of `pid` (all its threads').
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let kids = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            kids.split_whitespace()
                .filter_map(|k| k.parse::<u32>().ok()),
        );
    }
    out
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Polls `f` every 20 ms for up to 20 s.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) for a child to end, with its output.
fn finish(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `/dev/shm/keep-secrets-*` directories holding a file named `name`.
fn secret_dirs_with(name: &str) -> Vec<PathBuf> {
    std::fs::read_dir("/dev/shm")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("keep-secrets-"))
        .map(|e| e.path())
        .filter(|d| d.join(name).exists())
        .collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

/// Waits until the secret `name` is delivered, checks it is private and in the
/// directory named after the exec's pid; returns the directory and that pid.
fn private_secret_dir(agent: &Agent, name: &str) -> (PathBuf, u32) {
    let dir = wait_for("the secret file", || secret_dirs_with(name).pop());
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    assert_eq!(mode(&dir.join(name)), 0o600, "{}", dir.display());
    let dir_name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let exec = children(agent.child.id())
        .into_iter()
        .find(|p| dir_name.starts_with(&format!("keep-secrets-{p}-")))
        .unwrap_or_else(|| panic!("{dir_name} is not named after one of the agent's execs"));
    (dir, exec)
}

#[test]
fn secret_files_are_private_and_gone_after_a_limit_or_a_kill() {
    let agent = Agent::start("", None);
    let unique = format!("canary_{}", std::process::id());

    // Killed by the host for its wall-clock limit.
    let name = format!("{unique}_limit");
    let deploy = agent.deploy(&[
        "--timeout",
        "3s",
        "--secret",
        &format!("{name}=never-left-behind"),
        &fixture("sleep.wasm"),
        "--",
        "30",
    ]);
    let (dir, exec) = private_secret_dir(&agent, &name);
    let o = finish(deploy, "the deploy killed for its wall-clock limit");
    assert_eq!(o.status.code(), Some(153), "{}", stderr(&o));
    wait_for("the exec to end", || (!alive(exec)).then_some(()));
    wait_for("the secrets directory to go", || {
        (!dir.exists()).then_some(())
    });

    // Killed by its tenant.
    let name = format!("{unique}_kill");
    let deploy = agent.deploy(&[
        "--secret",
        &format!("{name}=never-left-behind"),
        &fixture("sleep.wasm"),
        "--",
        "30",
    ]);
    let (dir, exec) = private_secret_dir(&agent, &name);
    let list = agent.keeps();
    let keeps: serde_json::Value = serde_json::from_str(&list).unwrap();
    let id = keeps["keeps"]
        .as_array()
        .and_then(|a| a.iter().find(|k| k["state"] == "provisioned"))
        .and_then(|k| k["id"].as_str())
        .unwrap_or_else(|| panic!("no provisioned Keep in {list}"))
        .to_string();
    let o = agent.cli(&["kill", &id]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stderr(&o), agent.log());
    let _ = finish(deploy, "the killed deploy");
    wait_for("the exec to end", || (!alive(exec)).then_some(()));
    wait_for("the secrets directory to go", || {
        (!dir.exists()).then_some(())
    });
    assert!(secret_dirs_with(&name).is_empty());

    // Ended by itself: the exec removes its own.
    let name = format!("{unique}_exit");
    let o = finish(
        agent.deploy(&[
            "--secret",
            &format!("{name}=never-left-behind"),
            &fixture("files.wasm"),
            "--",
            "read",
            &format!("/secrets/{name}"),
        ]),
        "a deploy reading its secret",
    );
    assert_eq!(stdout(&o), "never-left-behind", "{}", stderr(&o));
    wait_for("the secrets directory to go", || {
        secret_dirs_with(&name).is_empty().then_some(())
    });
}

/// Runs the command without CAP_SYS_PTRACE when root (which would see through
/// "not dumpable"), as it is otherwise.
const NO_PTRACE: &str = "setpriv --bounding-set=-sys_ptrace --inh-caps=-sys_ptrace --";

#[test]
fn the_exec_is_not_dumpable_and_has_no_core_limit() {
    // The agent (and so its exec) runs without CAP_SYS_PTRACE, like the looker
    // below: a process may look at another's descriptors only if it has every
    // capability the other has.
    let root = rustix_free_euid() == 0;
    let wrapper = if root { NO_PTRACE } else { "" };
    let agent = Agent::start_wrapped("ulimit -c unlimited", wrapper, None);
    let exec = agent.empty_keep();
    let limits = std::fs::read_to_string(format!("/proc/{exec}/limits")).unwrap();
    let core: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap()
        .split_whitespace()
        .skip(4)
        .take(2)
        .collect();
    assert_eq!(
        core,
        ["0", "0"],
        "RLIMIT_CORE of the exec (the agent's is unlimited)"
    );

    // Not dumpable either (no core even with the limit raised again, and closed to
    // other processes of its user): the agent's descriptors can be looked at
    // through /proc, the exec's not.
    let look = |pid: u32| {
        let mut words = wrapper.split_whitespace().collect::<Vec<_>>();
        let fd0 = format!("/proc/{pid}/fd/0");
        words.extend(["readlink", &fd0]);
        Command::new(words[0])
            .args(&words[1..])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(
        look(agent.child.id()),
        "the check itself: the agent is dumpable"
    );
    assert!(
        !look(exec),
        "the exec is dumpable: its descriptors are open to its user"
    );
}

/// The descriptors of `pid` above 3 that lead to `marker`.
fn marker_fds(pid: u32, marker: &Path) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().unwrap_or(0) > 3)
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == marker))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_exec_inherits_no_descriptor_of_its_host() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("inherited");
    std::fs::write(&marker, "").unwrap();
    // Not close-on-exec in `keep` (as a shell or a service manager would leave them).
    let prelude = format!("exec 7<'{0}' 9<'{0}'", marker.display());

    let run = keep_via_sh(
        &prelude,
        "",
        &["run", "--no-jail", &fixture("sleep.wasm"), "--", "5"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for("the test's own set-up", || {
        (marker_fds(run.id(), &marker).len() == 2).then_some(())
    });
    let exec = wait_for("the exec of keep run", || {
        children(run.id()).into_iter().find(|p| {
            std::fs::read_link(format!("/proc/{p}/exe"))
                .is_ok_and(|e| e.to_string_lossy().contains("keep-exec"))
        })
    });
    // Let it pass its start-up.
    wait_for("the workload to run", || {
        (std::fs::read_dir(format!("/proc/{exec}/task"))
            .ok()?
            .count()
            > 1)
        .then_some(())
    });
    assert_eq!(
        marker_fds(exec, &marker),
        Vec::<String>::new(),
        "keep run's exec"
    );
    let o = finish(run, "keep run");
    assert_eq!(stdout(&o), "sleeping\nawake\n", "{}", stderr(&o));

    let agent = Agent::start(&prelude, None);
    assert_eq!(
        marker_fds(agent.child.id(), &marker).len(),
        2,
        "the test's own set-up"
    );
    let exec = agent.empty_keep();
    assert_eq!(
        marker_fds(exec, &marker),
        Vec::<String>::new(),
        "the agent's exec"
    );
}

#[test]
fn the_exec_dies_with_its_host_even_when_blocked() {
    let mut agent = Agent::start("", None);
    let name = format!("canary_{}_host_killed", std::process::id());
    // The workload never reads its stdin: the exec's input thread ends up blocked
    // writing it, and nothing else in the exec reads the launch channel, so only
    // the parent-death signal can tell it that the agent is gone.
    let mut deploy = Command::new(keep_bin())
        .args(["deploy", "--host", &agent.url, "--token", ALICE])
        .args(["--policy", &agent.policy()])
        .args(["--secret", &format!("{name}=left-by-a-killed-host")])
        .arg(fixture("sleep.wasm"))
        .args(["--", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = deploy.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 16];
        for _ in 0..256 {
            if input.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    wait_for("the Keep to be provisioned", || {
        agent.keeps().contains("\"provisioned\"").then_some(())
    });
    let exec = wait_for("the exec", || children(agent.child.id()).pop());
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(exec));
    agent.child.kill().unwrap(); // SIGKILL: the agent cleans nothing up
    agent.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(exec) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survived = alive(exec);
    if survived {
        let _ = Command::new("kill")
            .args(["-KILL", &exec.to_string()])
            .status();
    }
    let _ = deploy.kill();
    let _ = deploy.wait();
    let _ = feeder.join();
    assert!(!survived, "the exec outlived its agent by 10 s");

    // Neither could remove the secrets directory: the next agent does.
    let left = secret_dirs_with(&name);
    assert_eq!(left.len(), 1, "{left:?}");
    let _next = Agent::start("", None);
    assert!(
        !left[0].exists(),
        "{} outlived the next agent's start",
        left[0].display()
    );
}

/// A shell script of exactly `len` bytes that creates `marker` when run.
fn same_size_impostor(len: u64, marker: &Path) -> Vec<u8> {
    let mut script = format!("#!/bin/sh\ntouch '{}'\nexit 0\n", marker.display()).into_bytes();
    script.resize(usize::try_from(len).unwrap(), b'\n');
    script
}

/// The cached exec `keep run` writes into an empty cache directory: name, size.
fn cached_exec(cache: &Path) -> (String, u64) {
    let o = Command::new(keep_bin())
        .args(["run", &fixture("hello.wasm")])
        .env("KEEP_CACHE_DIR", cache)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let entry = std::fs::read_dir(cache)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("keep-exec-"))
        .expect("keep run caches the exec");
    (
        entry.file_name().to_string_lossy().into_owned(),
        entry.metadata().unwrap().len(),
    )
}

#[test]
fn a_same_size_file_put_in_place_of_the_exec_is_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let marker = dir.path().join("impostor-ran");
    let (name, len) = cached_exec(&cache);
    let impostor = same_size_impostor(len, &marker);
    let hello = |cache: &Path| {
        let o = Command::new(keep_bin())
            .args(["run", &fixture("hello.wasm")])
            .env("KEEP_CACHE_DIR", cache)
            .output()
            .unwrap();
        assert_eq!(stdout(&o), "Hello from inside a Keep!\n", "{}", stderr(&o));
        assert!(!marker.exists(), "the impostor ran");
    };

    // keep run: a file others can write, or one of another user's, is replaced.
    let cached = cache.join(&name);
    std::fs::remove_file(&cached).unwrap();
    std::fs::write(&cached, &impostor).unwrap();
    std::fs::set_permissions(&cached, std::fs::Permissions::from_mode(0o777)).unwrap();
    hello(&cache);
    if rustix_free_euid() == 0 {
        std::fs::remove_file(&cached).unwrap();
        std::fs::write(&cached, &impostor).unwrap();
        std::fs::set_permissions(&cached, std::fs::Permissions::from_mode(0o555)).unwrap();
        let chown = Command::new("chown")
            .args(["65534"])
            .arg(&cached)
            .status()
            .unwrap();
        assert!(chown.success());
        hello(&cache);
    }

    // The agent never runs the exec from its data_dir, whatever is there (even a
    // file of its own user's, read-only, of the right name and size).
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let planted = data.join(&name);
    std::fs::write(&planted, &impostor).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o555)).unwrap();
    let agent = Agent::start("", Some(&data));
    let o = finish(agent.deploy(&[&fixture("hello.wasm")]), "deploy hello");
    assert_eq!(stdout(&o), "Hello from inside a Keep!\n", "{}", stderr(&o));
    assert!(!marker.exists(), "the agent ran the planted file");
}

/// The effective uid, from /proc (the tests have no rustix).
fn rustix_free_euid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

#[test]
fn directories_others_can_write_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (m, who) in [
        (0o777, "world-writable"),
        (0o1777, "world-writable"),
        (0o770, "group-writable"),
    ] {
        let open = dir.path().join(format!("open-{m:o}"));
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(m)).unwrap();
        let o = Command::new(keep_bin())
            .args(["run", &fixture("hello.wasm")])
            .env("KEEP_CACHE_DIR", &open)
            .output()
            .unwrap();
        assert_one_line(&o, 125, &[&open.display().to_string(), who]);
        assert_eq!(stdout(&o), "");
        assert_eq!(
            std::fs::read_dir(&open).unwrap().count(),
            0,
            "nothing written"
        );

        let config = dir.path().join(format!("host-{m:o}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ninsecure_http = true\ndata_dir = \"{}\"\n",
                open.display()
            ),
        )
        .unwrap();
        let o = Command::new(keep_bin())
            .args(["host", "serve", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_one_line(&o, 125, &[&open.display().to_string(), who]);
    }

    // A missing data_dir (the README's /tmp/keep-agent) is created, 0700.
    let fresh = dir.path().join("keep-agent");
    let agent = Agent::start("", Some(&fresh));
    assert_eq!(mode(&fresh), 0o700);
    drop(agent);

    // No home and no cache directory: keep run still runs, caching nothing (no
    // fallback to /tmp).
    let o = Command::new(keep_bin())
        .args(["run", &fixture("hello.wasm")])
        .env_remove("KEEP_CACHE_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("HOME")
        .env("TMPDIR", dir.path().join("tmp"))
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "Hello from inside a Keep!\n", "{}", stderr(&o));
    assert!(!dir.path().join("tmp").exists());
}

/// In its jail a Keep's secrets live in the jail's own /dev/shm (a tmpfs of its
/// mount namespace): private to the exec, never in the host's /dev/shm, and gone
/// with the Keep, killed or not.
#[test]
fn jailed_secrets_never_reach_the_hosts_dev_shm() {
    let agent = Agent::start_jailed("", "", None, "required");
    let name = format!("canary_{}_jailed", std::process::id());
    let deploy = Command::new(keep_bin())
        .args(["deploy", "--host", &agent.url, "--token", ALICE])
        .args(["--policy", &agent.policy()])
        .args(["--secret", &format!("{name}=kept-in-the-jail")])
        .arg(fixture("sleep.wasm"))
        .args(["--", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The exec is the jail's PID 1, a grandchild of the agent.
    let exec = wait_for("the jailed exec", || {
        children(agent.child.id())
            .into_iter()
            .flat_map(children)
            .find(|p| {
                std::fs::read_dir(format!("/proc/{p}/root/dev/shm"))
                    .into_iter()
                    .flatten()
                    .flatten()
                    .any(|d| d.path().join(&name).exists())
            })
    });
    let inside: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{exec}/root/dev/shm"))
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .filter(|d| d.join(&name).exists())
        .collect();
    assert_eq!(inside.len(), 1, "{inside:?}");
    assert_eq!(mode(&inside[0].join(&name)), 0o600);
    assert!(secret_dirs_with(&name).is_empty(), "in the host's /dev/shm");
    let (status, body) = agent.http("GET", "/v1/keeps", "");
    assert_eq!(status, 200, "{body}");
    let id = body
        .split("\"id\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let (status, body) = agent.http("DELETE", &format!("/v1/keeps/{id}"), "");
    assert!(status < 300, "{status} {body}");
    let o = finish(deploy, "keep deploy");
    assert_ne!(o.status.code(), Some(0));
    wait_for("the jail to end", || (!alive(exec)).then_some(()));
    assert!(secret_dirs_with(&name).is_empty());
}
