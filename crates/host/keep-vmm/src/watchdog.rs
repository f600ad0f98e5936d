//! Stops a running vCPU from another thread: when the wall-clock or CPU-time limit
//! passes, or when the Keep is killed, the watchdog sets `immediate_exit` in the
//! vCPU's `kvm_run` and signals the vCPU thread, so `KVM_RUN` returns `EINTR` at
//! once (or, if the thread is between runs, the next `KVM_RUN` does).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why the watchdog stopped the vCPU.
pub const FIRED_WALL: u8 = 1;
pub const FIRED_CPU: u8 = 2;
pub const FIRED_KILL: u8 = 3;

const TICK: Duration = Duration::from_millis(5);

fn kick_signal() -> i32 {
    libc::SIGRTMIN() + 2
}

extern "C" fn on_kick(_: i32) {}

fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a handler that does nothing, installed without SA_RESTART so the
        // signal interrupts KVM_RUN; the sigaction struct is fully initialized.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_kick as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(kick_signal(), &sa, std::ptr::null_mut());
        }
    });
}

/// Kills a running Keep from any thread.
#[derive(Clone, Default)]
pub struct KillHandle(Arc<AtomicBool>);

impl KillHandle {
    pub fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the Keep is being stopped: killed, or past a limit (the watchdog
    /// sets this too when it fires). A host-call server that could block (on a
    /// slow reader of the Keep's output, say) checks it so it never holds up the stop.
    pub fn is_killed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct Watchdog {
    stop: Arc<(Mutex<bool>, Condvar)>,
    fired: Arc<AtomicU8>,
    thread: Option<JoinHandle<()>>,
}

struct Target {
    run: *mut u8,
    thread: libc::pthread_t,
}
// SAFETY: the pointer is only written (volatile, one byte: immediate_exit) while
// the vCPU exists; `Watchdog` is joined before the vCPU is dropped.
unsafe impl Send for Target {}

impl Watchdog {
    /// `immediate_exit` points into the calling (vCPU) thread's `kvm_run`.
    pub fn start(
        immediate_exit: *mut u8,
        wall: Option<Duration>,
        cpu: Option<Duration>,
        kill: KillHandle,
    ) -> Self {
        install_handler();
        // SAFETY: pthread_self has no preconditions.
        let thread = unsafe { libc::pthread_self() };
        let target = Target {
            run: immediate_exit,
            thread,
        };
        let mut clock: libc::clockid_t = 0;
        // SAFETY: the target thread is alive (it is us) and `clock` is a valid out pointer.
        let have_cpu_clock = unsafe { libc::pthread_getcpuclockid(target.thread, &mut clock) } == 0;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let fired = Arc::new(AtomicU8::new(0));
        let (stop2, fired2) = (stop.clone(), fired.clone());
        let start = Instant::now();
        let thread = std::thread::spawn(move || {
            let target = target;
            let (lock, cv) = &*stop2;
            let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
            while !*stopped {
                let reason = if kill.0.load(Ordering::SeqCst) {
                    FIRED_KILL
                } else if wall.is_some_and(|w| start.elapsed() >= w) {
                    FIRED_WALL
                } else if have_cpu_clock && cpu.is_some_and(|c| thread_cpu(clock) >= c) {
                    FIRED_CPU
                } else {
                    0
                };
                if reason != 0 {
                    let _ = fired2.compare_exchange(0, reason, Ordering::SeqCst, Ordering::SeqCst);
                    kill.kill();
                    // SAFETY: see `Target`: the vCPU (and its kvm_run) outlives this thread.
                    unsafe {
                        std::ptr::write_volatile(target.run, 1);
                        libc::pthread_kill(target.thread, kick_signal());
                    }
                }
                stopped = cv
                    .wait_timeout(stopped, TICK)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        });
        Self {
            stop,
            fired,
            thread: Some(thread),
        }
    }

    pub fn fired(&self) -> u8 {
        self.fired.load(Ordering::SeqCst)
    }
}

fn thread_cpu(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and out pointer.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
