//! Preopened sockets served by the VMM's SocketServer: the `sockets` fixture
//! accepts a connection on declared socket 0 (/.keep/sock/0) and echoes it, and a
//! hostile host's SOCKET replies out of range are refused by the shim.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use common::{Hostile, assert_refused, config, fixture, have_kvm};
use keep_vmm::{Error, HostCallServer, Keep, RawReply, SocketServer, SocketSpec, StdioServer};

fn server() -> (StdioServer, SocketAddr) {
    let sockets = SocketServer::open(&[SocketSpec {
        name: "web".into(),
        listen: true,
        addr: "127.0.0.1:0".parse().expect("addr"),
    }])
    .expect("listen");
    let addr = sockets.local_addr(0).expect("local addr");
    let mut s = StdioServer::capture(Vec::new());
    s.sockets = Some(sockets);
    (s, addr)
}

/// Connects to `addr` after a pause (so the guest polls first), sends `msg`,
/// and returns what comes back.
fn client(addr: SocketAddr, msg: &'static [u8]) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let Ok(mut c) = TcpStream::connect(addr) else {
            return Vec::new();
        };
        let _ = c.write_all(msg);
        let _ = c.shutdown(Shutdown::Write);
        let mut back = Vec::new();
        let _ = c.read_to_end(&mut back);
        back
    })
}

fn run(server: &mut dyn HostCallServer) -> Result<keep_vmm::Exit, Error> {
    let payload = std::fs::read(fixture("sockets")).expect("fixture");
    let keep = Keep::launch(config("sockets", &[]), &payload).expect("launch");
    keep.run(server)
}

#[test]
fn a_preopened_listener_accepts_and_echoes() {
    if !have_kvm() {
        return;
    }
    let (mut s, addr) = server();
    let msg: &'static [u8] = &[b'x'; 5000];
    let c = client(addr, msg);
    let exit = run(&mut s).expect("run");
    assert_eq!(exit.code, 0, "{}", String::from_utf8_lossy(&s.stderr));
    assert_eq!(c.join().expect("client"), msg);
    assert_eq!(
        String::from_utf8_lossy(&s.stdout),
        "open 1\n\
         getsockname 0 len 16 family 2\n\
         poll 1 in 1\n\
         accept 1 len 16 loopback 1\n\
         echoed 5000 spanning 1\n\
         getpeername 0 len 16\n\
         nonblock 1\n\
         recv after eof 0\n\
         shutdown 0\n\
         close 0 0\n\
         undeclared 2\n"
    );
}

fn refused(op: u64, what: &str, tamper: impl Fn(&mut RawReply)) {
    let (inner, addr) = server();
    let c = client(addr, b"hello");
    let mut s = Hostile {
        inner,
        socket: true,
        op,
        tamper,
    };
    let result = run(&mut s);
    // Closing the sockets ends the client's conversation.
    drop(s);
    let _ = c.join();
    assert_refused(result, op, what);
}

// Operation numbers (abi::sock).
const ACCEPT: u64 = 2;
const RECV: u64 = 3;
const SEND: u64 = 4;
const GET_NONBLOCK: u64 = 7;
const POLL: u64 = 8;
const NAME: u64 = 10;

#[test]
fn hostile_socket_replies_are_refused() {
    if !have_kvm() {
        return;
    }
    refused(GET_NONBLOCK, "socket flags out of range", |r| r.ret = 2);
    refused(NAME, "socket address too long", |r| r.val[1] = 29);
    refused(NAME, "socket data outside the call block", |r| {
        r.val[0] = u64::MAX - 4
    });
    refused(POLL, "poll count out of range", |r| r.ret = 2);
    refused(POLL, "socket data outside the call block", |r| {
        r.val[0] = 1 << 40
    });
    refused(ACCEPT, "socket handle out of range", |r| r.ret = 1024);
    refused(ACCEPT, "socket handle out of range", |r| r.ret = i64::MIN);
    refused(RECV, "socket read count out of range", |r| r.ret = 301);
    refused(RECV, "socket data outside the call block", |r| {
        r.val[0] = u64::MAX - 2
    });
    refused(SEND, "socket write count out of range", |r| r.ret = 1 << 20);
}

/// An echo server for one connection: reads 5 bytes, sends them back, waits for EOF.
fn echo_once() -> (u16, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let t = std::thread::spawn(move || {
        if let Ok((mut c, _)) = l.accept() {
            let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(10)));
            let mut b = [0u8; 5];
            if c.read_exact(&mut b).is_ok() {
                let _ = c.write_all(&b);
                let _ = c.read_to_end(&mut Vec::new());
            }
        }
    });
    (port, t)
}

#[test]
fn epoll_eventfd_and_own_sockets_as_natively() {
    if !have_kvm() {
        return;
    }
    let (port, t) = echo_once();
    let (native, code) = common::run_native("epoll", &[&port.to_string()], b"");
    t.join().expect("native server");
    assert_eq!(code, Some(0));

    // In the Keep the program's socket is the VMM's, allowed to connect only there.
    let (port, t) = echo_once();
    let mut s = StdioServer::capture(Vec::new());
    s.sockets = Some(SocketServer::dynamic(&[SocketSpec {
        name: "echo".into(),
        listen: false,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }]));
    let payload = std::fs::read(fixture("epoll")).expect("fixture");
    let keep = Keep::launch(config("epoll", &[&port.to_string()]), &payload).expect("launch");
    let exit = keep.run(&mut s).expect("run");
    t.join().expect("keep server");
    assert_eq!(exit.code, 0, "{}", String::from_utf8_lossy(&s.stderr));
    assert_eq!(
        String::from_utf8_lossy(&s.stdout),
        String::from_utf8_lossy(&native)
    );
    assert!(String::from_utf8_lossy(&native).contains("echo 5 hello"));
}

#[test]
fn a_socket_the_guest_makes_reaches_only_declared_addresses() {
    if !have_kvm() {
        return;
    }
    // Nothing declared: the connect is refused by the VMM (EACCES), so the echo
    // never comes; the program still ends normally.
    let (port, t) = echo_once();
    let mut s = StdioServer::capture(Vec::new());
    s.sockets = Some(SocketServer::dynamic(&[]));
    let payload = std::fs::read(fixture("epoll")).expect("fixture");
    let keep = Keep::launch(config("epoll", &[&port.to_string()]), &payload).expect("launch");
    let exit = keep.run(&mut s).expect("run");
    let _ = TcpStream::connect(("127.0.0.1", port)); // wake the server
    t.join().expect("server");
    assert_eq!(exit.code, 0);
    let out = String::from_utf8_lossy(&s.stdout);
    assert!(out.contains("connect started 0"), "{out}");
    assert!(out.contains("echo 0"), "{out}");
}

/// As `refused`, on the `epoll` fixture (a socket the guest makes itself).
fn refused_own_socket(op: u64, what: &str, tamper: impl Fn(&mut RawReply)) {
    let (port, t) = echo_once();
    let mut inner = StdioServer::capture(Vec::new());
    inner.sockets = Some(SocketServer::dynamic(&[SocketSpec {
        name: "echo".into(),
        listen: false,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }]));
    let mut s = Hostile {
        inner,
        socket: true,
        op,
        tamper,
    };
    let payload = std::fs::read(fixture("epoll")).expect("fixture");
    let keep = Keep::launch(config("epoll", &[&port.to_string()]), &payload).expect("launch");
    let result = keep.run(&mut s);
    drop(s);
    let _ = TcpStream::connect(("127.0.0.1", port)); // wake the server if it waits
    let _ = t.join();
    assert_refused(result, op, what);
}

const OPEN: u64 = 12;
const CONNECT: u64 = 15;
const GETOPT: u64 = 16;

#[test]
fn hostile_replies_about_own_sockets_are_refused() {
    if !have_kvm() {
        return;
    }
    refused_own_socket(OPEN, "socket handle out of range", |r| r.ret = 1024);
    refused_own_socket(OPEN, "socket handle out of range", |r| r.ret = -100_000);
    refused_own_socket(CONNECT, "socket status out of range", |r| r.ret = 3);
    refused_own_socket(GETOPT, "socket option out of range", |r| {
        r.ret = i64::from(u32::MAX)
    });
    refused_own_socket(POLL, "poll count out of range", |r| r.ret = 5);
}
