//! The host's limits: wall clock, CPU time, kill; and the launch digest.

mod common;

use std::time::{Duration, Instant};

use common::{config, fixture, have_kvm};
use keep_vmm::{Error, Keep, KeepConfig, StdioServer};

fn spin(config: KeepConfig) -> (Keep, Vec<u8>) {
    let payload = std::fs::read(fixture("spin")).expect("fixture");
    (Keep::launch(config, &payload).expect("launch"), payload)
}

#[test]
fn wall_clock_limit_stops_a_spinning_keep() {
    if !have_kvm() {
        return;
    }
    let (keep, _) = spin(KeepConfig {
        wall_limit: Some(Duration::from_millis(300)),
        ..config("spin", &[])
    });
    let t = Instant::now();
    let r = keep.run(&mut StdioServer::capture(Vec::new()));
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stopped promptly: {:?}",
        t.elapsed()
    );
}

#[test]
fn cpu_limit_stops_a_spinning_keep() {
    if !have_kvm() {
        return;
    }
    let (keep, _) = spin(KeepConfig {
        cpu_limit: Some(Duration::from_millis(200)),
        ..config("spin", &[])
    });
    let r = keep.run(&mut StdioServer::capture(Vec::new()));
    assert!(matches!(r, Err(Error::CpuLimit(_))), "{r:?}");
}

#[test]
fn kill_from_another_thread() {
    if !have_kvm() {
        return;
    }
    let (keep, _) = spin(config("spin", &[]));
    let kill = keep.kill_handle();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        kill.kill();
    });
    let r = keep.run(&mut StdioServer::capture(Vec::new()));
    killer.join().expect("killer thread");
    assert!(matches!(r, Err(Error::Killed)), "{r:?}");
}

#[test]
fn launch_digest_is_offline_and_covers_every_layer() {
    let payload = std::fs::read(fixture("hello")).expect("fixture");
    let base = config("hello", &[]);
    let d = Keep::measure(&base, &payload).expect("measure");
    assert_eq!(d, Keep::measure(&base, &payload).expect("measure"));
    let mut other = payload.clone();
    other[100] ^= 1;
    assert_ne!(d, Keep::measure(&base, &other).expect("measure"));
    assert_ne!(
        d,
        Keep::measure(&config("hello", &["x"]), &payload).expect("measure")
    );
    assert_ne!(
        d,
        Keep::measure(
            &KeepConfig {
                mem_size: 128 << 20,
                ..base.clone()
            },
            &payload
        )
        .expect("measure")
    );
    if have_kvm() {
        let keep = Keep::launch(base, &payload).expect("launch");
        assert_eq!(keep.digest(), d, "the launched Keep has the offline digest");
    }
}

#[test]
fn bad_configurations_are_refused() {
    let payload = std::fs::read(fixture("hello")).expect("fixture");
    for mem in [0, 1 << 20, (64 << 20) + 4096, 4 << 30] {
        let r = Keep::measure(
            &KeepConfig {
                mem_size: mem,
                ..config("hello", &[])
            },
            &payload,
        );
        assert!(matches!(r, Err(Error::Config(_))), "{mem}: {r:?}");
    }
    assert!(matches!(
        Keep::measure(&config("hello", &[]), &[]),
        Err(Error::Config(_))
    ));
}

/// A copy of `bytes` at a page-aligned address (plus `shift`) that lives for the
/// rest of the test program, as `launch_static` needs.
fn static_copy(bytes: &[u8], shift: usize) -> &'static [u8] {
    let buf: &'static mut [u8] = Box::leak(vec![0u8; bytes.len() + 8192].into_boxed_slice());
    let start = (4096 - buf.as_ptr() as usize % 4096) % 4096 + shift;
    buf[start..start + bytes.len()].copy_from_slice(bytes);
    &buf[start..start + bytes.len()]
}

#[test]
fn a_payload_mapped_read_only_in_place_runs_and_measures_as_a_copy() {
    if !have_kvm() {
        return;
    }
    let payload = std::fs::read(fixture("signal")).expect("fixture");
    assert!(payload.len() > 3 * 4096, "whole pages and a tail");
    let hash = keep_vmm::sha384(&payload);
    let run = |keep: Keep| {
        let digest = keep.digest();
        let mut server = StdioServer::capture(Vec::new());
        let exit = keep.run(&mut server).expect("runs");
        (exit.code, server.stdout, digest)
    };
    let copied = run(Keep::launch(config("signal", &[]), &payload).expect("launch"));
    // Page-aligned: the whole pages are a read-only slot over these bytes.
    let aligned = static_copy(&payload, 0);
    let in_place =
        run(Keep::launch_static(config("signal", &[]), aligned, hash).expect("launch_static"));
    // Not aligned: copied, as with `launch`.
    let shifted = static_copy(&payload, 8);
    let fallback =
        run(Keep::launch_static(config("signal", &[]), shifted, hash).expect("launch_static"));
    assert_eq!(copied.0, 0);
    assert!(!copied.1.is_empty());
    assert_eq!(in_place, copied, "same exit, output and digest in place");
    assert_eq!(fallback, copied, "same exit, output and digest when copied");
}
