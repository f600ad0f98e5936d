//! WASI 0.3 commands (`wasi:cli/run@0.3.0`, component-model async) on both
//! backends: a real one from wasi-testsuite (tests/fixtures/src/p3_stdio_roundtrip)
//! runs, checked by its output and exit status; a 0.3 release candidate, which
//! wasmtime 48 cannot link, is refused in one line that says so.

mod common;

use common::{assert_one_line, backends, fixture, run, stderr, stdout, uleb};

/// The 13 bytes the fixture reads from stdin (the suite's payload).
const PAYLOAD: &[u8] = b"Hello, world!";

#[test]
fn a_wasi_0_3_command_runs_on_both_backends() {
    let fixture = fixture("p3_stdio_roundtrip.wasm");
    for backend in backends() {
        let o = run(&["run", "--backend", backend, &fixture], Some(PAYLOAD));
        assert_eq!(o.status.code(), Some(0), "{backend}: {}", stderr(&o));
        // Written back through the wasi:cli/stdout@0.3.0 and stderr streams.
        assert_eq!(stdout(&o), "Hello, world!", "{backend}");
        assert_eq!(stderr(&o), "Hello, world!", "{backend}");
    }
}

#[test]
fn a_wasi_0_3_command_that_panics_is_a_trap() {
    let fixture = fixture("p3_stdio_roundtrip.wasm");
    for backend in backends() {
        // Fewer than 13 bytes: the guest's assertion fails, it aborts.
        let o = run(&["run", "--backend", backend, &fixture], Some(b"short"));
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(134), "{backend}: {err}");
        assert!(
            err.contains("Complete(13)"),
            "{backend}: the guest's panic: {err}"
        );
        let keep: Vec<&str> = err.lines().filter(|l| l.starts_with("keep:")).collect();
        assert_eq!(keep.len(), 1, "{backend}: {err}");
        assert!(keep[0].contains("trapped"), "{backend}: {}", keep[0]);
        assert_eq!(stdout(&o), "", "{backend}");
    }
}

fn read_uleb(bytes: &[u8], at: &mut usize) -> usize {
    let (mut n, mut shift) = (0usize, 0);
    loop {
        let b = bytes[*at];
        *at += 1;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return n;
        }
        shift += 7;
    }
}

/// `component` with its top-level export `from` renamed `to`: the name and the
/// export section's size are re-encoded, everything else is left as it was.
fn rename_export(component: &[u8], from: &str, to: &str) -> Vec<u8> {
    let (mut old, mut new) = (Vec::new(), Vec::new());
    uleb(from.len() as u64, &mut old);
    old.extend_from_slice(from.as_bytes());
    uleb(to.len() as u64, &mut new);
    new.extend_from_slice(to.as_bytes());
    let mut out = component[..8].to_vec();
    let mut at = 8;
    let mut renamed = false;
    while at < component.len() {
        let id = component[at];
        at += 1;
        let size = read_uleb(component, &mut at);
        let mut body = component[at..at + size].to_vec();
        at += size;
        // 11: a component export section.
        if id == 11
            && let Some(i) = body.windows(old.len()).position(|w| w == old)
        {
            body.splice(i..i + old.len(), new.iter().copied());
            renamed = true;
        }
        out.push(id);
        uleb(body.len() as u64, &mut out);
        out.extend_from_slice(&body);
    }
    assert!(renamed, "no top-level export {from}");
    out
}

#[test]
fn a_wasi_0_3_release_candidate_is_refused_by_name() {
    let bytes = std::fs::read(fixture("p3_stdio_roundtrip.wasm")).unwrap();
    let rc = rename_export(
        &bytes,
        "wasi:cli/run@0.3.0",
        "wasi:cli/run@0.3.0-rc-2025-09-16",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rc.wasm");
    std::fs::write(&path, rc).unwrap();
    let path = path.to_string_lossy().into_owned();
    for backend in backends() {
        let o = run(&["run", "--backend", backend, &path], Some(PAYLOAD));
        assert_one_line(
            &o,
            125,
            &[
                "WASI 0.3 prerelease",
                "wasi:cli/run@0.3.0-rc-2025-09-16",
                "not release candidates",
            ],
        );
        assert!(
            !stderr(&o).contains("invalid WebAssembly"),
            "{}",
            stderr(&o)
        );
        assert_eq!(stdout(&o), "", "{backend}");
    }
}
