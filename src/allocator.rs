//! The binary's memory allocator, chosen once per process: jemalloc for the service, glibc's for
//! extraction workers (docs/architecture.md, "Memory and CPU").
//!
//! A sync allocates and frees a few small buffers per object; glibc spent about a quarter of a
//! metadata sync's CPU doing it, and jemalloc cuts the CPU per object by a tenth to a third at the
//! same peak memory. The workers are this binary too, but they run under an address-space limit,
//! and under jemalloc the same file needs more of it (a gzip bomb that stops cleanly at the
//! decompression cap under glibc reached the limit under jemalloc). So the extraction pool starts
//! its workers with [`ENV`] set to `system`, and each process reads that variable at its first
//! allocation, before `main`, and keeps the answer: memory is always freed by the allocator that
//! handed it out.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};
use tikv_jemallocator::Jemalloc;

/// The environment variable that picks the allocator: `system` for glibc's; anything else, or
/// unset, for jemalloc. The pool sets it for its workers; users may set it to run the service
/// under glibc (for example to compare, or for tools that hook glibc's `malloc`).
pub const ENV: &str = "CONTENT_SYNC_ALLOCATOR";
/// The same name, NUL-terminated for `getenv`.
const ENV_C: &std::ffi::CStr = c"CONTENT_SYNC_ALLOCATOR";

/// Which allocator a process uses (its code is what [`PerProcess`] keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Jemalloc = 1,
    System = 2,
}

impl Kind {
    /// The allocator named by the variable's value (`None`: unset).
    pub fn from_value(value: Option<&[u8]>) -> Kind {
        match value {
            Some(b"system") => Kind::System,
            _ => Kind::Jemalloc,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Jemalloc => "jemalloc",
            Kind::System => "system",
        }
    }
}

const UNDECIDED: u8 = 0;
const JEMALLOC: u8 = Kind::Jemalloc as u8;
const SYSTEM: u8 = Kind::System as u8;

/// The global allocator of the `content-sync` binary (`#[global_allocator]` in src/main.rs, which
/// also holds jemalloc's options).
pub struct PerProcess {
    choice: AtomicU8,
}

impl PerProcess {
    pub const fn new() -> Self {
        PerProcess {
            choice: AtomicU8::new(UNDECIDED),
        }
    }

    /// The allocator this process uses, decided at its first call.
    pub fn kind(&self) -> Kind {
        match self.choice.load(Ordering::Relaxed) {
            JEMALLOC => Kind::Jemalloc,
            SYSTEM => Kind::System,
            _ => {
                let kind = Kind::from_value(env_value());
                // The first allocation happens while the process has one thread (Rust's start-up,
                // before `main`), and a second decision would read the same environment anyway.
                self.choice.store(kind as u8, Ordering::Relaxed);
                kind
            }
        }
    }
}

impl Default for PerProcess {
    fn default() -> Self {
        Self::new()
    }
}

/// The variable's value, read without allocating (this runs inside the allocator).
fn env_value() -> Option<&'static [u8]> {
    // SAFETY: `getenv` reads the process's environment and returns a pointer into it or NULL; it
    // allocates nothing. It is called at the first allocation, before `main` and before any
    // thread could change the environment, and the bytes are only compared, not kept.
    let value = unsafe { libc::getenv(ENV_C.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: a non-NULL result of `getenv` is a NUL-terminated string that lives as long as the
    // environment is not changed (see above).
    Some(unsafe { std::ffi::CStr::from_ptr(value) }.to_bytes())
}

// SAFETY: every call goes to the allocator chosen at the first call, which never changes, so a
// block is always resized and freed by the allocator that handed it out; both allocators uphold
// `GlobalAlloc`'s contract themselves.
unsafe impl GlobalAlloc for PerProcess {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.kind() {
            // SAFETY: forwarded unchanged (the caller upholds `alloc`'s contract).
            Kind::Jemalloc => unsafe { Jemalloc.alloc(layout) },
            Kind::System => unsafe { System.alloc(layout) },
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match self.kind() {
            // SAFETY: as `alloc`.
            Kind::Jemalloc => unsafe { Jemalloc.alloc_zeroed(layout) },
            Kind::System => unsafe { System.alloc_zeroed(layout) },
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match self.kind() {
            // SAFETY: `ptr` came from this same allocator (the choice never changes).
            Kind::Jemalloc => unsafe { Jemalloc.dealloc(ptr, layout) },
            Kind::System => unsafe { System.dealloc(ptr, layout) },
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match self.kind() {
            // SAFETY: as `dealloc`.
            Kind::Jemalloc => unsafe { Jemalloc.realloc(ptr, layout, new_size) },
            Kind::System => unsafe { System.realloc(ptr, layout, new_size) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_system_picks_glibc() {
        assert_eq!(Kind::from_value(Some(b"system")), Kind::System);
        assert_eq!(Kind::from_value(None), Kind::Jemalloc);
        assert_eq!(Kind::from_value(Some(b"jemalloc")), Kind::Jemalloc);
        assert_eq!(Kind::from_value(Some(b"")), Kind::Jemalloc);
    }

    #[test]
    fn blocks_round_trip_through_either_allocator() {
        for code in [JEMALLOC, SYSTEM] {
            let allocator = PerProcess {
                choice: AtomicU8::new(code),
            };
            let layout = Layout::from_size_align(100, 16).unwrap();
            // SAFETY: a non-zero layout; the block is written within it, grown, and freed by the
            // same allocator.
            unsafe {
                let p = allocator.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert_eq!(*p.add(99), 0);
                *p = 7;
                let q = allocator.realloc(p, layout, 1 << 20);
                assert_eq!(*q, 7);
                allocator.dealloc(q, Layout::from_size_align(1 << 20, 16).unwrap());
            }
        }
    }
}
