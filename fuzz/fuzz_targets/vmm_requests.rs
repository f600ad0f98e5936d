//! The VMM's parsers of what a guest writes into the host-call block: the request
//! header and its data ranges (every host call), the staged-output record, and the
//! sockaddr of a SOCKET BIND/CONNECT. The guest is untrusted by the host; none of
//! these may panic, and a parsed sockaddr must be one the bytes actually say.
//!
//! Then the same bytes as a run of FILE requests served by a `FileServer` on a
//! writable preopen whose parent directory holds a host file the guest must never
//! reach (with symlinks to it inside the preopen): after every request, that file's
//! size and times (ctime included: any change to it) and the parent's entries are
//! as before.
#![no_main]

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use keep_vmm::{CALL_DATA_CAPACITY, FileServer};
use libfuzzer_sys::fuzz_target;

/// Where the request's paths go in the data area (abi::fs::REQUEST_DATA).
const PATHS: usize = 64;
const PREOPEN: u64 = 1;
const RENAME: u64 = 11;
const SYMLINK: u64 = 13;
const LINK: u64 = 14;

struct Tree {
    parent: PathBuf,
    root: PathBuf,
    secret: PathBuf,
    before: (u64, i64, i64, i64, i64),
}

fn state(p: &std::path::Path) -> (u64, i64, i64, i64, i64) {
    let m = std::fs::metadata(p).expect("the outside file is gone");
    (
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    )
}

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let parent = std::env::temp_dir().join(format!("keep-fuzz-vmm-{}", std::process::id()));
        let root = parent.join("root");
        let secret = parent.join("secret");
        std::fs::create_dir_all(&root).expect("mkdir");
        std::fs::write(&secret, "outside").expect("write");
        let before = state(&secret);
        Tree {
            parent,
            root,
            secret,
            before,
        }
    })
}

fn file_requests(mut input: &[u8]) {
    let t = tree();
    let _ = std::os::unix::fs::symlink(&t.secret, t.root.join("abs"));
    let _ = std::os::unix::fs::symlink("../secret", t.root.join("rel"));
    let mut server = FileServer::open(&[(&t.root, true)]).expect("preopen");
    let mut data = vec![0u8; CALL_DATA_CAPACITY];
    // Handle 0: the preopen as O_PATH; 1: it opened for reading.
    let _ = server.serve(PREOPEN, &[0, 0o10000000, 0, 0, 0, 0, 0, 0], &mut data);
    let _ = server.serve(PREOPEN, &[0; 8], &mut data);
    for _ in 0..8 {
        if input.len() < 2 {
            break;
        }
        let (op, place) = (u64::from(input[0] % 20), input[1] & 1 == 1);
        input = &input[2..];
        let mut w = [0u64; 8];
        for word in w.iter_mut() {
            let n = input.len().min(8);
            let mut b = [0u8; 8];
            b[..n].copy_from_slice(&input[..n]);
            *word = u64::from_le_bytes(b);
            input = &input[n..];
        }
        let mut path = |at: usize| -> (u64, u64) {
            let len = input.first().map_or(0, |&l| usize::from(l % 64));
            let bytes = input.get(1..1 + len).unwrap_or_default();
            data[at..at + bytes.len()].copy_from_slice(bytes);
            input = input.get(1 + len..).unwrap_or_default();
            (at as u64, bytes.len() as u64)
        };
        let (a, b) = (path(PATHS), path(PATHS + 64));
        if place {
            match op {
                SYMLINK => {
                    (w[0], w[1], w[2], w[3], w[4]) = (b.0, b.1, w[2] % 4, a.0, a.1);
                }
                RENAME | LINK => {
                    (w[0], w[1], w[2]) = (w[0] % 4, a.0, a.1);
                    (w[3], w[4], w[5]) = (w[3] % 4, b.0, b.1);
                }
                _ => (w[0], w[1], w[2]) = (w[0] % 4, a.0, a.1),
            }
        }
        let _ = server.serve(op, &w, &mut data);
        assert_eq!(
            state(&t.secret),
            t.before,
            "op {op} {w:?} changed the outside file"
        );
        let entries = std::fs::read_dir(&t.parent).map_or(0, |d| d.count());
        assert_eq!(entries, 2, "op {op} {w:?} changed the preopen's parent");
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = keep_vmm::fuzzing::parse_call_block(data);
    file_requests(data);
    if data.len() < 16 {
        return;
    }
    let (head, rest) = data.split_at(16);
    let off = u64::from_le_bytes(head[..8].try_into().unwrap_or([0; 8])) % 64;
    let len = u64::from_le_bytes(head[8..].try_into().unwrap_or([0; 8])) % 40;
    if let Some(addr) = keep_vmm::fuzzing::guest_sockaddr(rest, off, len) {
        let b = &rest[off as usize..];
        assert_eq!(addr.port(), u16::from_be_bytes([b[2], b[3]]));
        assert_eq!(addr.is_ipv4(), b[0] == 2);
    }
});
