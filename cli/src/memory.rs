//! The allocator's settings: freed memory goes back to the system.
//!
//! With glibc's defaults a node that once held a burst (a peer's messages
//! at the bound of its share, a large proposal) keeps that memory for
//! good: each thread's arena keeps what it freed, and the threshold above
//! which an allocation gets its own mapping rises to the largest block
//! freed (up to 32 MiB), so later large buffers come from the heap too.
//! Fixed thresholds give buffers of 128 KiB and more their own mappings,
//! unmapped when freed, trim the heap's top above 128 KiB, and two arenas
//! keep the threads' free lists few. Measured with the attack bench:
//! BENCHMARKS.md.

/// Above this size an allocation is mapped on its own and unmapped when
/// freed; the heap's free top beyond it is given back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const OWN_MAPPING_FROM: libc::c_int = 128 * 1024;
/// The allocator's arenas (one per thread by default, up to eight per
/// core).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Sets the allocator so that freed memory is given back; called once,
/// first thing in `main`, before any thread starts.
pub(crate) fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters; it is
    // called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_MAPPING_FROM);
        libc::mallopt(libc::M_TRIM_THRESHOLD, OWN_MAPPING_FROM);
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}
