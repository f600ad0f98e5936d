//! `poll_oneoff` over the preopened sockets of the preview 1 additions.
//!
//! wasmtime's preview 1 `poll_oneoff` knows nothing of the exec's sockets, so a call
//! whose descriptors are sockets is served here with poll(2): socket readiness plus
//! clock subscriptions (relative, or absolute on the realtime clock) as the timeout.
//! A call that names no socket goes to wasmtime unchanged. A call that mixes sockets
//! with other descriptors, or waits on an absolute monotonic deadline, gets ENOTSUP.
//! Every subscription and event is read and written inside the guest memory bounds.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustix::event::{PollFd, PollFlags};

/// Size of a preview 1 `subscription` and `event` in guest memory.
const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;
/// The most subscriptions read in one call.
pub const MAX_SUBSCRIPTIONS: usize = 4096;

const TAG_CLOCK: u8 = 0;
const TAG_FD_READ: u8 = 1;
const TAG_FD_WRITE: u8 = 2;
const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
const SUBCLOCK_ABSTIME: u16 = 1;
const EVENT_FD_READWRITE_HANGUP: u16 = 1;

pub const EINVAL: i32 = 28;
pub const EFAULT: i32 = 21;
pub const ENOTSUP: i32 = 58;
pub const EIO: i32 = 29;

/// One subscription, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    /// Fires `after` the call started.
    Clock {
        userdata: u64,
        after: Duration,
    },
    Fd {
        userdata: u64,
        fd: u32,
        write: bool,
    },
}

/// Decodes `n` subscriptions at `at` in `data`; an errno on bad input.
pub fn parse(data: &[u8], at: i32, n: i32, now: SystemTime) -> Result<Vec<Subscription>, i32> {
    let n = usize::try_from(n as u32).map_err(|_| EINVAL)?;
    if n == 0 || n > MAX_SUBSCRIPTIONS {
        return Err(EINVAL);
    }
    let start = at as u32 as usize;
    let end = n
        .checked_mul(SUBSCRIPTION_SIZE)
        .and_then(|len| start.checked_add(len))
        .ok_or(EFAULT)?;
    let table = data.get(start..end).ok_or(EFAULT)?;
    let mut out = Vec::with_capacity(n);
    for s in table.chunks_exact(SUBSCRIPTION_SIZE) {
        let userdata = u64_at(s, 0);
        out.push(match s[8] {
            TAG_CLOCK => {
                let clock = u32_at(s, 16);
                let timeout = u64_at(s, 24);
                let flags = u16::from_le_bytes([s[40], s[41]]);
                let after = if flags & SUBCLOCK_ABSTIME == 0 {
                    Duration::from_nanos(timeout)
                } else if clock == CLOCK_REALTIME {
                    let deadline = UNIX_EPOCH + Duration::from_nanos(timeout);
                    deadline.duration_since(now).unwrap_or(Duration::ZERO)
                } else if clock == CLOCK_MONOTONIC {
                    return Err(ENOTSUP);
                } else {
                    return Err(EINVAL);
                };
                Subscription::Clock { userdata, after }
            }
            TAG_FD_READ | TAG_FD_WRITE => Subscription::Fd {
                userdata,
                fd: u32_at(s, 16),
                write: s[8] == TAG_FD_WRITE,
            },
            _ => return Err(EINVAL),
        });
    }
    Ok(out)
}

/// A ready subscription, to be written back as a preview 1 `event`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub userdata: u64,
    pub error: u16,
    pub tag: u8,
    pub nbytes: u64,
    pub hangup: bool,
}

/// Waits until a socket subscription is ready or the earliest clock fires.
/// `socket_of` maps a descriptor to its socket and whether it is a connected stream
/// (None: not a socket).
pub fn wait<'a>(
    subs: &[Subscription],
    socket_of: impl Fn(u32) -> Option<(BorrowedFd<'a>, bool)>,
) -> Result<Vec<Event>, i32> {
    let started = Instant::now();
    let mut fds = Vec::new();
    let mut which = Vec::new();
    for (i, s) in subs.iter().enumerate() {
        if let Subscription::Fd { fd, write, .. } = *s {
            let (sock, _) = socket_of(fd).ok_or(ENOTSUP)?;
            let flags = if write { PollFlags::OUT } else { PollFlags::IN };
            fds.push(PollFd::from_borrowed_fd(sock, flags));
            which.push(i);
        }
    }
    let timeout = subs
        .iter()
        .filter_map(|s| match s {
            Subscription::Clock { after, .. } => Some(*after),
            Subscription::Fd { .. } => None,
        })
        .min();
    loop {
        let left = timeout.map(|t| t.saturating_sub(started.elapsed()));
        let spec = left.map(|d| rustix::time::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        match rustix::event::poll(&mut fds, spec.as_ref()) {
            Ok(_) => break,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return Err(EIO),
        }
    }
    let elapsed = started.elapsed();
    let mut events = Vec::new();
    for (pfd, &i) in fds.iter().zip(&which) {
        let rev = pfd.revents();
        if rev.is_empty() {
            continue;
        }
        let Subscription::Fd {
            userdata,
            fd,
            write,
        } = subs[i]
        else {
            continue;
        };
        let nbytes = match socket_of(fd) {
            Some((sock, true)) if !write => rustix::io::ioctl_fionread(sock).unwrap_or(0),
            _ => 0,
        };
        events.push(Event {
            userdata,
            error: 0,
            tag: if write { TAG_FD_WRITE } else { TAG_FD_READ },
            nbytes,
            hangup: rev.intersects(PollFlags::HUP | PollFlags::ERR),
        });
    }
    for s in subs {
        if let Subscription::Clock { userdata, after } = *s
            && (after <= elapsed || (events.is_empty() && Some(after) == timeout))
        {
            events.push(Event {
                userdata,
                error: 0,
                tag: TAG_CLOCK,
                nbytes: 0,
                hangup: false,
            });
        }
    }
    Ok(events)
}

/// Writes events at `at`; false if they do not fit in `data`.
pub fn write_events(data: &mut [u8], at: i32, events: &[Event]) -> bool {
    let start = at as u32 as usize;
    let Some(end) = events
        .len()
        .checked_mul(EVENT_SIZE)
        .and_then(|l| start.checked_add(l))
    else {
        return false;
    };
    let Some(out) = data.get_mut(start..end) else {
        return false;
    };
    for (e, slot) in events.iter().zip(out.chunks_exact_mut(EVENT_SIZE)) {
        slot.fill(0);
        slot[0..8].copy_from_slice(&e.userdata.to_le_bytes());
        slot[8..10].copy_from_slice(&e.error.to_le_bytes());
        slot[10] = e.tag;
        if e.tag != TAG_CLOCK {
            slot[16..24].copy_from_slice(&e.nbytes.to_le_bytes());
            let flags = if e.hangup {
                EVENT_FD_READWRITE_HANGUP
            } else {
                0
            };
            slot[24..26].copy_from_slice(&flags.to_le_bytes());
        }
    }
    true
}

fn u64_at(s: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(b)
}

fn u32_at(s: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    fn sub(userdata: u64, tag: u8, a: u32, timeout: u64, flags: u16) -> [u8; 48] {
        let mut s = [0u8; 48];
        s[0..8].copy_from_slice(&userdata.to_le_bytes());
        s[8] = tag;
        s[16..20].copy_from_slice(&a.to_le_bytes());
        s[24..32].copy_from_slice(&timeout.to_le_bytes());
        s[40..42].copy_from_slice(&flags.to_le_bytes());
        s
    }

    #[test]
    fn subscriptions_are_decoded_inside_memory_only() {
        let now = UNIX_EPOCH + Duration::from_secs(100);
        let mut mem = vec![0u8; 200];
        mem[8..56].copy_from_slice(&sub(7, TAG_CLOCK, CLOCK_MONOTONIC, 5_000, 0));
        mem[56..104].copy_from_slice(&sub(8, TAG_FD_WRITE, 4, 0, 0));
        let subs = parse(&mem, 8, 2, now).unwrap();
        assert_eq!(
            subs[0],
            Subscription::Clock {
                userdata: 7,
                after: Duration::from_nanos(5_000)
            }
        );
        assert_eq!(
            subs[1],
            Subscription::Fd {
                userdata: 8,
                fd: 4,
                write: true
            }
        );
        assert_eq!(parse(&mem, 8, 5, now), Err(EFAULT));
        assert_eq!(parse(&mem, -8, 1, now), Err(EFAULT));
        assert_eq!(parse(&mem, 8, 0, now), Err(EINVAL));
        assert_eq!(parse(&mem, 8, -1, now), Err(EINVAL));
        // Absolute realtime: 101 s is one second after `now`; a past one fires at once.
        mem[8..56].copy_from_slice(&sub(
            1,
            TAG_CLOCK,
            CLOCK_REALTIME,
            101_000_000_000,
            SUBCLOCK_ABSTIME,
        ));
        assert_eq!(
            parse(&mem, 8, 1, now).unwrap()[0],
            Subscription::Clock {
                userdata: 1,
                after: Duration::from_secs(1)
            }
        );
        mem[8..56].copy_from_slice(&sub(1, TAG_CLOCK, CLOCK_REALTIME, 1, SUBCLOCK_ABSTIME));
        assert_eq!(
            parse(&mem, 8, 1, now).unwrap()[0],
            Subscription::Clock {
                userdata: 1,
                after: Duration::ZERO
            }
        );
        mem[8..56].copy_from_slice(&sub(1, TAG_CLOCK, CLOCK_MONOTONIC, 1, SUBCLOCK_ABSTIME));
        assert_eq!(parse(&mem, 8, 1, now), Err(ENOTSUP));
        mem[16] = 9;
        assert_eq!(parse(&mem, 8, 1, now), Err(EINVAL));
    }

    #[test]
    fn a_readable_socket_wakes_the_poll_and_a_quiet_one_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let lookup = |fd: u32| (fd == 5).then_some((server.as_fd(), true));
        let subs = [
            Subscription::Fd {
                userdata: 1,
                fd: 5,
                write: false,
            },
            Subscription::Clock {
                userdata: 2,
                after: Duration::from_millis(30),
            },
        ];
        let events = wait(&subs, lookup).unwrap();
        assert_eq!(
            events,
            vec![Event {
                userdata: 2,
                error: 0,
                tag: TAG_CLOCK,
                nbytes: 0,
                hangup: false
            }]
        );
        std::io::Write::write_all(&mut client, b"hello").unwrap();
        let events = wait(&subs, lookup).unwrap();
        assert_eq!(events[0].userdata, 1);
        assert_eq!(events[0].nbytes, 5);
        assert_eq!(events.len(), 1);
        assert_eq!(
            wait(
                &[Subscription::Fd {
                    userdata: 1,
                    fd: 9,
                    write: false
                }],
                lookup
            ),
            Err(ENOTSUP)
        );

        let mut mem = vec![0u8; 40];
        assert!(write_events(&mut mem, 8, &events));
        assert_eq!(mem[8], 1);
        assert_eq!(mem[18], TAG_FD_READ);
        assert_eq!(mem[24], 5);
        assert!(!write_events(&mut mem, 9, &events));
    }
}
