//! A cell for the shim's global state. The Keep has one vCPU, no interrupts are
//! enabled, and syscalls and exceptions do not nest, so there is never more than
//! one user of a global at a time.

use core::cell::UnsafeCell;

pub struct Global<T>(UnsafeCell<T>);

// SAFETY: one vCPU, no interrupts, no nesting: see the module comment.
unsafe impl<T> Sync for Global<T> {}

impl<T> Global<T> {
    pub const fn new(value: T) -> Self {
        Self(UnsafeCell::new(value))
    }

    /// Runs `f` with the only reference to the value.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        // SAFETY: single vCPU, no interrupts, and no caller re-enters `with` on the
        // same global from inside `f`, so this is the only live reference.
        f(unsafe { &mut *self.0.get() })
    }
}
