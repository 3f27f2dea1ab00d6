//! The process's allocator: mimalloc for the service, the system's for extraction workers.
//!
//! A metadata sync allocates a few dozen small blocks per object, and glibc's allocator took over a
//! quarter of the service's CPU (docs/architecture.md#memory-and-cpu). Extraction workers run under
//! an address-space limit (`extract/pool.rs`); glibc grows a huge buffer in place (`mremap`) where
//! mimalloc allocates anew and copies, so a worker would reach its limit at half the data. The pool
//! starts workers with [`SYSTEM_ALLOCATOR_ENV`] set, and the choice is made once, at the first
//! allocation, before any thread exists, so a block is always freed by the allocator that made it.
#![allow(unsafe_code)] // a global allocator is unsafe by definition; each use says why it is sound

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

/// Set (to anything) in a process's environment, it makes the process use the system allocator.
pub const SYSTEM_ALLOCATOR_ENV: &str = "CONTENT_SYNC_SYSTEM_ALLOCATOR";
const SYSTEM_ALLOCATOR_ENV_C: &std::ffi::CStr = c"CONTENT_SYNC_SYSTEM_ALLOCATOR";

const UNDECIDED: u8 = 0;
const MIMALLOC: u8 = 1;
const SYSTEM: u8 = 2;

/// The global allocator of the binary (`main.rs`).
pub struct Allocator {
    choice: AtomicU8,
}

impl Allocator {
    pub const fn new() -> Self {
        Self {
            choice: AtomicU8::new(UNDECIDED),
        }
    }

    #[inline]
    fn system(&self) -> bool {
        match self.choice.load(Ordering::Relaxed) {
            MIMALLOC => false,
            SYSTEM => true,
            _ => {
                // SAFETY: getenv reads the environment without allocating; the first allocation
                // happens before `main`, while the process has one thread.
                let system = !unsafe { libc::getenv(SYSTEM_ALLOCATOR_ENV_C.as_ptr()) }.is_null();
                self.choice
                    .store(if system { SYSTEM } else { MIMALLOC }, Ordering::Relaxed);
                system
            }
        }
    }
}

impl Default for Allocator {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call goes to one of two sound allocators, always the same one for the life of
// the process, so each block is freed and resized by the allocator that made it.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.system() {
            unsafe { System.alloc(layout) }
        } else {
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if self.system() {
            unsafe { System.alloc_zeroed(layout) }
        } else {
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.system() {
            unsafe { System.dealloc(ptr, layout) }
        } else {
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.system() {
            unsafe { System.realloc(ptr, layout, new_size) }
        } else {
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}
