//! The VMM's parsers of what a guest writes into the host-call block: the request
//! header and its data ranges (every host call), the staged-output record, and the
//! sockaddr of a SOCKET BIND/CONNECT. The guest is untrusted by the host; none of
//! these may panic, and a parsed sockaddr must be one the bytes actually say.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = keep_vmm::fuzzing::parse_call_block(data);
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
