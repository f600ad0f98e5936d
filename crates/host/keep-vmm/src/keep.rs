//! A Keep: the VM, its vCPU and memory, launched with a payload and run to its end.

use std::time::{Duration, Instant};

use kvm_bindings::{KVM_MEM_READONLY, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};

use crate::abi::*;
use crate::error::vector_name;
use crate::hostcall::{self, HostCallServer, Request};
use crate::measure::{fold, sha384};
use crate::memory::GuestMemory;
use crate::watchdog::{FIRED_CPU, FIRED_KILL, FIRED_WALL, KillHandle, Watchdog};
use crate::{Error, SHIM, loader, vcpu};

/// What the host fixes at launch.
#[derive(Debug, Clone)]
pub struct KeepConfig {
    /// Guest memory in bytes (a multiple of 2 MiB, 8 MiB to 3 GiB). Fixed for the
    /// Keep's life: the shim allocates inside it and never asks for more.
    pub mem_size: u64,
    /// argv (at least the program name) and envp, measured as part of the boot layer.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub wall_limit: Option<Duration>,
    pub cpu_limit: Option<Duration>,
}

impl Default for KeepConfig {
    fn default() -> Self {
        Self {
            mem_size: 64 << 20,
            args: vec!["payload".into()],
            env: Vec::new(),
            wall_limit: None,
            cpu_limit: None,
        }
    }
}

/// Counters of one run.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub exits: u64,
    pub host_calls: u64,
    /// From the first KVM_RUN to the first host call.
    pub first_call: Option<Duration>,
    /// Peak guest memory the shim allocated, as it reported at exit (a statistic
    /// from the guest; 0 when it did not exit normally).
    pub guest_peak_bytes: u64,
    /// Page frames the shim could not give the payload because guest memory was
    /// used up, as it reported at exit (0 when it did not exit normally): more
    /// than 0 means the memory limit was hit.
    pub memory_refused_frames: u64,
    /// Guest memory the host backed by the end (see `GuestMemory::resident_bytes`;
    /// the guest never gives pages back, so this is its peak): the host's count.
    pub host_resident_bytes: Option<u64>,
    pub wall: Duration,
}

/// A normal end: the payload called exit or exit_group.
#[derive(Debug, Clone)]
pub struct Exit {
    pub code: i32,
    pub stats: Stats,
}

/// What a request leaves for the run loop.
enum Served {
    Exit(i32, u64, u64),
    Sleep(u64),
}

pub struct Keep {
    // Field order matters for Drop: the vCPU and VM go before their memory.
    vcpu: VcpuFd,
    _vm: VmFd,
    mem: GuestMemory,
    kvm: Kvm,
    digest: [u8; 48],
    config: KeepConfig,
    kill: KillHandle,
}

fn check_config(config: &KeepConfig, payload: &[u8]) -> Result<(), Error> {
    let m = config.mem_size;
    if !(MIN_MEM_SIZE..=MAX_MEM_SIZE).contains(&m) || !m.is_multiple_of(2 << 20) {
        return Err(Error::Config(format!(
            "memory size {m} must be a multiple of 2 MiB from 8 MiB to 3 GiB"
        )));
    }
    if payload.is_empty() || payload.len() as u64 > m - PAYLOAD_GPA - (4 << 20) {
        return Err(Error::Config(format!(
            "payload of {} bytes does not fit in {m} bytes of guest memory",
            payload.len()
        )));
    }
    Ok(())
}

fn digest_of(payload: &[u8], payload_sha384: [u8; 48], boot: &[u8]) -> [u8; 48] {
    fold([
        (SHIM.len() as u64, *SHIM_SHA384),
        (payload.len() as u64, payload_sha384),
        (boot.len() as u64, sha384(boot)),
    ])
}

/// The shim's hash, computed once per process.
static SHIM_SHA384: std::sync::LazyLock<[u8; 48]> = std::sync::LazyLock::new(|| sha384(SHIM));

impl Keep {
    /// The launch digest a Keep with this configuration and payload would have,
    /// computed without KVM (for `keep measure`).
    pub fn measure(config: &KeepConfig, payload: &[u8]) -> Result<[u8; 48], Error> {
        Self::measure_with_payload_hash(config, payload, sha384(payload))
    }

    /// As [`Keep::measure`], with the payload's SHA-384 supplied by the caller.
    pub fn measure_with_payload_hash(
        config: &KeepConfig,
        payload: &[u8],
        payload_sha384: [u8; 48],
    ) -> Result<[u8; 48], Error> {
        check_config(config, payload)?;
        let boot = loader::boot_info(
            config.mem_size,
            payload.len() as u64,
            &config.args,
            &config.env,
        )?;
        Ok(digest_of(payload, payload_sha384, &boot))
    }

    /// Creates the VM and loads shim, payload and boot parameters. Nothing runs yet.
    pub fn launch(config: KeepConfig, payload: &[u8]) -> Result<Self, Error> {
        Self::launch_with_payload_hash(config, payload, sha384(payload))
    }

    /// As [`Keep::launch`], with the payload's SHA-384 supplied by the caller (e.g.
    /// computed when the exec was built), so a launch does not hash it again. The
    /// caller is the host, which on plain KVM computes the digest anyway: a wrong
    /// hash gives a wrong digest, as a host that lies would.
    pub fn launch_with_payload_hash(
        config: KeepConfig,
        payload: &[u8],
        payload_sha384: [u8; 48],
    ) -> Result<Self, Error> {
        Self::launch_inner(config, payload, payload_sha384, false)
    }

    /// As [`Keep::launch_with_payload_hash`], for a payload that lives as long as
    /// the program (the exec embedded in `keep`). When it is page-aligned and the
    /// host supports read-only slots, its whole pages become a read-only memory slot
    /// at `PAYLOAD_GPA` instead of a copy: nothing is copied or zeroed at launch, and
    /// only the pages the guest touches are ever mapped (the copy of the 29 MB exec
    /// was ~16 ms of every launch). The last partial page is copied as before. A
    /// guest write to the slot is an MMIO exit, which stops the Keep. The guest's
    /// view and the launch digest are the same as with a copy.
    pub fn launch_static(
        config: KeepConfig,
        payload: &'static [u8],
        payload_sha384: [u8; 48],
    ) -> Result<Self, Error> {
        let aligned = (payload.as_ptr() as u64).is_multiple_of(PAGE_SIZE);
        Self::launch_inner(config, payload, payload_sha384, aligned)
    }

    /// `in_place`: map the payload's whole pages read-only from where they are; only
    /// set for a `'static` payload (the slot must outlive the VM).
    fn launch_inner(
        config: KeepConfig,
        payload: &[u8],
        payload_sha384: [u8; 48],
        in_place: bool,
    ) -> Result<Self, Error> {
        check_config(&config, payload)?;
        let boot = loader::boot_info(
            config.mem_size,
            payload.len() as u64,
            &config.args,
            &config.env,
        )?;
        let digest = digest_of(payload, payload_sha384, &boot);
        let kvm =
            Kvm::new().map_err(|e| Error::NoKvm(std::io::Error::from_raw_os_error(e.errno())))?;
        let vm = kvm.create_vm().map_err(Error::kvm("create VM"))?;
        let mut mem = GuestMemory::new(config.mem_size as usize)?;
        let whole = if in_place && kvm.check_extension(kvm_ioctls::Cap::ReadonlyMem) {
            payload.len() as u64 & !(PAGE_SIZE - 1)
        } else {
            0
        };
        let size = mem.size() as u64;
        let regions = if whole == 0 {
            vec![(0, size, mem.host_addr(), 0)]
        } else {
            let after = PAYLOAD_GPA + whole;
            vec![
                (0, PAYLOAD_GPA, mem.host_addr(), 0),
                (
                    PAYLOAD_GPA,
                    whole,
                    payload.as_ptr() as u64,
                    KVM_MEM_READONLY,
                ),
                (after, size - after, mem.host_addr() + after, 0),
            ]
        };
        for (slot, (gpa, len, host, flags)) in regions.into_iter().enumerate() {
            let region = kvm_userspace_memory_region {
                slot: slot as u32,
                guest_phys_addr: gpa,
                memory_size: len,
                userspace_addr: host,
                flags,
            };
            // SAFETY: each region is inside our own guest-memory mapping, which
            // outlives the VM (field order in Keep) and is not remapped while
            // registered, or (read-only) the whole pages of a payload that lives for
            // the rest of the program (`launch_static`); KVM never writes to it.
            unsafe { vm.set_user_memory_region(region) }
                .map_err(Error::kvm("set memory region"))?;
        }
        loader::page_tables(&mut mem)?;
        loader::descriptor_tables(&mut mem)?;
        let entry = loader::load_shim(&mut mem, SHIM)?;
        // The whole pages are in the read-only slot when `whole` > 0.
        mem.write(PAYLOAD_GPA + whole, &payload[whole as usize..])?;
        mem.write(BOOT_INFO_GPA, &boot)?;
        let vcpu = vm.create_vcpu(0).map_err(Error::kvm("create vCPU"))?;
        vcpu::setup(&kvm, &vcpu, entry)?;
        Ok(Self {
            vcpu,
            _vm: vm,
            mem,
            kvm,
            digest,
            config,
            kill: KillHandle::default(),
        })
    }

    /// The SHA-384 launch digest (see `measure`).
    pub fn digest(&self) -> [u8; 48] {
        self.digest
    }

    /// A handle that stops the Keep from another thread.
    pub fn kill_handle(&self) -> KillHandle {
        self.kill.clone()
    }

    /// Runs the Keep until the payload exits, faults, the shim refuses something, or
    /// a limit is reached.
    pub fn run(mut self, server: &mut dyn HostCallServer) -> Result<Exit, Error> {
        let _ = &self.kvm;
        let immediate_exit = std::ptr::addr_of_mut!(self.vcpu.get_kvm_run().immediate_exit);
        let dog = Watchdog::start(
            immediate_exit,
            self.config.wall_limit,
            self.config.cpu_limit,
            self.kill.clone(),
        );
        let start = Instant::now();
        let mut stats = Stats::default();
        let result = loop {
            let exit = self.vcpu.run();
            stats.exits += 1;
            let doorbell = match exit {
                Ok(VcpuExit::MmioWrite(addr, _)) if addr == DOORBELL_GPA => true,
                Ok(VcpuExit::MmioWrite(addr, _)) => {
                    break Err(Error::Unexpected(format!(
                        "store to unbacked address {addr:#x}"
                    )));
                }
                Ok(VcpuExit::MmioRead(addr, _)) => {
                    break Err(Error::Unexpected(format!(
                        "load from unbacked address {addr:#x}"
                    )));
                }
                Ok(VcpuExit::Hlt) => {
                    break Err(Error::Unexpected(
                        "the vCPU halted without an exit call".into(),
                    ));
                }
                Ok(VcpuExit::Shutdown) => {
                    let rip = self.vcpu.get_regs().map(|r| r.rip).unwrap_or(0);
                    break Err(Error::Unexpected(format!(
                        "triple fault (shutdown) near rip {rip:#x}"
                    )));
                }
                Ok(VcpuExit::Intr) => false,
                Ok(other) => {
                    let what = format!("{other:?}");
                    let regs = self
                        .vcpu
                        .get_regs()
                        .map(|r| format!("{r:x?}"))
                        .unwrap_or_default();
                    break Err(Error::Unexpected(format!("{what}; registers {regs}")));
                }
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => false,
                Err(e) => {
                    break Err(Error::Kvm {
                        what: "run",
                        source: e,
                    });
                }
            };
            match dog.fired() {
                FIRED_WALL => {
                    break Err(Error::Timeout(self.config.wall_limit.unwrap_or_default()));
                }
                FIRED_CPU => break Err(Error::CpuLimit(self.config.cpu_limit.unwrap_or_default())),
                FIRED_KILL => break Err(Error::Killed),
                _ => {}
            }
            if !doorbell {
                continue;
            }
            stats.host_calls += 1;
            stats.first_call.get_or_insert_with(|| start.elapsed());
            match self.serve(server) {
                Ok(None) => {}
                Ok(Some(Served::Sleep(ns))) => {
                    // In slices, so a limit or a kill ends the sleep promptly.
                    let until = Instant::now() + Duration::from_nanos(ns);
                    while dog.fired() == 0 {
                        let now = Instant::now();
                        if now >= until {
                            break;
                        }
                        std::thread::sleep((until - now).min(Duration::from_millis(5)));
                    }
                }
                Ok(Some(Served::Exit(code, peak, refused))) => {
                    stats.guest_peak_bytes = peak;
                    stats.memory_refused_frames = refused;
                    break Ok(code);
                }
                Err(e) => break Err(e),
            }
        };
        drop(dog);
        if result.is_err() {
            self.deliver_pending(server);
        }
        stats.wall = start.elapsed();
        stats.host_resident_bytes = self.mem.resident_bytes();
        result.map(|code| Exit { code, stats })
    }

    /// The Keep stopped abnormally: hand over the output the shim had staged.
    fn deliver_pending(&mut self, server: &mut dyn HostCallServer) {
        let Ok(block) = self.mem.slice_mut(CALL_BLOCK_GPA, CALL_BLOCK_SIZE as usize) else {
            return;
        };
        if let Some(call) = hostcall::pending_output(block) {
            let (_, data) = block.split_at_mut(CALL_DATA_OFFSET as usize);
            let _ = server.serve(&call, data);
        }
    }

    /// Serves one request; Some when the run loop has more to do.
    fn serve(&mut self, server: &mut dyn HostCallServer) -> Result<Option<Served>, Error> {
        let block = self
            .mem
            .slice_mut(CALL_BLOCK_GPA, CALL_BLOCK_SIZE as usize)?;
        match hostcall::parse(block)? {
            Request::Call(call) => {
                let (header, data) = block.split_at_mut(CALL_DATA_OFFSET as usize);
                let reply = server.serve(&call, data);
                hostcall::write_reply(header, reply);
                Ok(None)
            }
            Request::Log(line) => {
                server.log(&line);
                Ok(None)
            }
            Request::Exit(code, peak, refused) => Ok(Some(Served::Exit(code, peak, refused))),
            Request::Sleep(ns) => Ok(Some(Served::Sleep(ns))),
            Request::Fault {
                vector,
                error_code,
                rip,
                cr2,
            } => Err(Error::Fault {
                vector,
                name: vector_name(vector),
                error_code,
                rip,
                cr2,
            }),
            Request::Abort(reason) => Err(Error::ShimAbort(reason)),
        }
    }
}
