//! The syscall fixtures (tests/kvm) inside a Keep, compared with a native run of
//! the same binary: same stdout, same exit code.

mod common;

use common::{have_kvm, run_in_keep, run_native};
use keep_vmm::Error;

fn same_as_native(name: &str, args: &[&str], input: &[u8]) {
    if !have_kvm() {
        return;
    }
    let (result, server) = run_in_keep(name, args, input);
    let exit = result.unwrap_or_else(|e| panic!("{name} in the Keep: {e}"));
    let (stdout, code) = run_native(name, args, input);
    assert_eq!(
        String::from_utf8_lossy(&server.stdout),
        String::from_utf8_lossy(&stdout),
        "{name}: stdout differs from the native run"
    );
    assert_eq!(
        Some(exit.code),
        code,
        "{name}: exit code differs from the native run"
    );
}

#[test]
fn write_args_and_exit_code() {
    same_as_native("hello", &["one", "two words"], b"");
}

#[test]
fn first_instruction_is_a_syscall() {
    same_as_native("first", &[], b"");
}

#[test]
fn brk_mmap_munmap_mprotect_madvise() {
    same_as_native("mem", &[], b"");
}

#[test]
fn clock_gettime() {
    same_as_native("clock", &[], b"");
}

#[test]
fn getrandom() {
    same_as_native("random", &[], b"");
}

#[test]
fn uname_getpid_ioctl() {
    same_as_native("ident", &[], b"");
}

#[test]
fn large_output() {
    same_as_native("bigout", &[], b"");
}

#[test]
fn faults_are_delivered_as_signals() {
    // SIGSEGV on guard pages of a lazily reserved 4 GiB region (on the alternate
    // stack), SIGFPE, SIGILL with a handler that edits registers and returns.
    same_as_native("signal", &[], b"");
}

#[test]
fn read_from_stdin() {
    same_as_native("echo", &[], b"some input\nover two lines");
}

#[test]
fn unsupported_syscall_is_enosys_and_logged_once() {
    if !have_kvm() {
        return;
    }
    let (result, server) = run_in_keep("enosys", &[], b"");
    assert_eq!(result.expect("enosys runs").code, 0);
    assert_eq!(String::from_utf8_lossy(&server.stdout), "getppid: ENOSYS\n");
    let lines: Vec<_> = server
        .log
        .iter()
        .filter(|l| l.contains("unsupported syscall 00110"))
        .collect();
    assert_eq!(lines.len(), 1, "logged once: {:?}", server.log);
}

#[test]
fn fault_is_reported_with_vector_and_address() {
    if !have_kvm() {
        return;
    }
    let (result, server) = run_in_keep("fault", &[], b"");
    assert_eq!(String::from_utf8_lossy(&server.stdout), "before\n");
    match result {
        Err(Error::Fault {
            vector: 14,
            cr2: 0x10,
            error_code,
            ..
        }) => assert_eq!(error_code & 2, 2, "a write"),
        other => panic!("expected a page fault report, got {other:?}"),
    }
}

#[test]
fn bad_pointers_are_efault() {
    // With input waiting, Linux also checks the read buffer (on an empty stdin it
    // would return 0 first; the shim checks before asking the host).
    same_as_native("badptr", &[], b"xyz");
}

#[test]
fn registers_and_avx_state_survive_a_syscall() {
    same_as_native("regs", &[], b"");
}

#[test]
fn throughput_one_exit_per_64k_write() {
    same_as_native("throughput", &[], b"");
    if !have_kvm() {
        return;
    }
    let (result, server) = run_in_keep("throughput", &[], b"");
    let exit = result.expect("throughput runs");
    assert_eq!(server.stdout.len(), 16 << 20);
    // Output is staged in the call block and sent when it is full: one WRITE per
    // CALL_DATA_CAPACITY bytes (fewer exits than the 256 writes of 64 KiB), + EXIT.
    let writes = (16usize << 20).div_ceil(keep_vmm::CALL_DATA_CAPACITY) as u64;
    assert_eq!(exit.stats.host_calls, writes + 1);
}

#[test]
fn sleep_and_a_monotonic_clock_without_an_exit_per_read() {
    same_as_native("sleep", &[], b"");
    if !have_kvm() {
        return;
    }
    let (result, server) = run_in_keep("sleep", &[], b"");
    let exit = result.expect("sleep runs");
    assert_eq!(
        String::from_utf8_lossy(&server.stdout),
        "slept: ok\nmonotonic: ok\nadvances: ok\n"
    );
    // 100,000 clock reads: the shim extrapolates with the TSC and asks the host
    // only to (re)synchronise, so far fewer host calls than reads.
    assert!(
        exit.stats.host_calls < 1000,
        "{} host calls",
        exit.stats.host_calls
    );
}
