//! Guest memory: one anonymous mapping, fixed at launch, registered as KVM slot 0.
//! All accesses from the VMM are bounds-checked copies.

use crate::Error;

pub struct GuestMemory {
    ptr: *mut u8,
    size: usize,
}

// SAFETY: the mapping is owned by this value and only accessed through &self/&mut
// self methods; the vCPU thread is the only user while the Keep runs.
unsafe impl Send for GuestMemory {}

impl GuestMemory {
    pub fn new(size: usize) -> Result<Self, Error> {
        // SAFETY: a fresh private anonymous mapping; checked for MAP_FAILED below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::Memory(format!(
                "mmap of {size} bytes: {}",
                std::io::Error::last_os_error()
            )));
        }
        // Transparent huge pages where the host allows them (`madvise` mode):
        // fewer host page faults when the guest first touches its memory.
        // SAFETY: advice on our own fresh mapping; failure only loses the hint.
        let _ = unsafe { libc::madvise(ptr, size, libc::MADV_HUGEPAGE) };
        Ok(Self {
            ptr: ptr.cast(),
            size,
        })
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes of the mapping the host has backed with memory (mincore): what the
    /// Keep touched, counted by the host rather than reported by the guest. None
    /// if the kernel will not say.
    pub fn resident_bytes(&self) -> Option<u64> {
        let page = 4096usize;
        let mut vec = vec![0u8; self.size.div_ceil(page)];
        // SAFETY: ptr/size are our own page-aligned mapping; `vec` has one byte per page.
        let rc = unsafe { libc::mincore(self.ptr.cast(), self.size, vec.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        let pages = vec.iter().filter(|&&b| b & 1 != 0).count() as u64;
        Some(pages * page as u64)
    }

    pub fn host_addr(&self) -> u64 {
        self.ptr as u64
    }

    fn range(&self, gpa: u64, len: usize) -> Result<usize, Error> {
        let start = usize::try_from(gpa).map_err(|_| Error::Memory(format!("address {gpa:#x}")))?;
        match start.checked_add(len) {
            Some(end) if end <= self.size => Ok(start),
            _ => Err(Error::Memory(format!(
                "{len} bytes at {gpa:#x} outside {} bytes of guest memory",
                self.size
            ))),
        }
    }

    pub fn write(&mut self, gpa: u64, data: &[u8]) -> Result<(), Error> {
        let start = self.range(gpa, data.len())?;
        // SAFETY: the range was checked to lie inside the mapping.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(start), data.len()) };
        Ok(())
    }

    pub fn slice_mut(&mut self, gpa: u64, len: usize) -> Result<&mut [u8], Error> {
        let start = self.range(gpa, len)?;
        // SAFETY: as for `slice`, and &mut self makes this borrow unique.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) })
    }
}

impl Drop for GuestMemory {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping once; the VM that used it is dropped first
        // (field order in Keep).
        unsafe { libc::munmap(self.ptr.cast(), self.size) };
    }
}
