//! A bad value for a flag is a usage error: exit 2 and one `keep:` line naming the
//! flag, as the README promises (125 is for a workload keep cannot run). One case
//! per flag, through the real binary.

mod common;

use common::{assert_one_line, fixture, keep};

fn refused(args: &[&str], fragments: &[&str]) {
    let o = keep().args(args).output().unwrap();
    assert_one_line(&o, 2, fragments);
    assert!(o.stdout.is_empty(), "{args:?}");
}

#[test]
fn bad_flag_values_of_keep_run_exit_2() {
    let hello = fixture("hello.wasm");
    let cases: &[(&[&str], &[&str])] = &[
        (&["--memory", "lots"], &["--memory"]),
        (&["--memory", "0"], &["--memory 0", "greater than zero"]),
        (&["--cpu", "forever"], &["--cpu"]),
        (&["--cpu", "0s"], &["--cpu 0s", "greater than zero"]),
        (&["--timeout", "soon"], &["--timeout"]),
        (&["--max-output", "1 parsec"], &["--max-output"]),
        (&["--max-files", "0"], &["--max-files 0"]),
        (&["--env", "FOO"], &["--env FOO", "KEY=VALUE"]),
        (&["--env", "=x"], &["--env =x", "key is empty"]),
        (&["--dir", ""], &["--dir", "HOST::GUEST"]),
        (&["--ro-dir", "::/data"], &["--ro-dir", "HOST::GUEST"]),
        (
            &["--dir", "/nonexistent-keep-dir::/d"],
            &["--dir", "is not a directory"],
        ),
    ];
    for (flags, fragments) in cases {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.push(&hello);
        refused(&args, fragments);
    }
}

#[test]
fn bad_flag_values_of_other_commands_exit_2() {
    let hello = fixture("hello.wasm");
    let host = [
        "--host",
        "http://127.0.0.1:9",
        "--token",
        "alice-token-0123456789",
    ];
    let deploy = |extra: &[&str]| {
        let mut a = vec!["deploy"];
        a.extend_from_slice(&host);
        a.extend_from_slice(extra);
        a.push(&hello);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let cases: Vec<(Vec<String>, &[&str])> = vec![
        (deploy(&["--memory", "lots"]), &["--memory"]),
        (deploy(&["--cpu", "0"]), &["--cpu 0"]),
        (deploy(&["--timeout", "soon"]), &["--timeout"]),
        (deploy(&["--max-output", "0"]), &["--max-output 0"]),
        (deploy(&["--env", "FOO"]), &["--env FOO"]),
        (deploy(&["--secret", "nokey"]), &["NAME=@FILE"]),
        (deploy(&["--idle-timeout", "0s"]), &["--idle-timeout"]),
        (
            vec![
                "ps".into(),
                "--host".into(),
                "ftp://x".into(),
                "--token".into(),
                "t".into(),
            ],
            &["--host", "http://"],
        ),
        (
            vec!["measure".into(), "--memory".into(), "0".into()],
            &["--memory 0"],
        ),
        (
            vec![
                "verify".into(),
                "--now".into(),
                "yesterday".into(),
                hello.clone(),
            ],
            &["--now"],
        ),
        (
            vec![
                "verify".into(),
                "--report-data".into(),
                "zz".into(),
                hello.clone(),
            ],
            &["--report-data"],
        ),
    ];
    for (args, fragments) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, fragments);
    }
}

#[test]
fn a_workload_keep_cannot_run_still_exits_125() {
    let o = keep()
        .args(["run", &fixture("not_wasm.wasm")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125));
}
