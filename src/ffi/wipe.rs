//! The module's allocator: the system's, except that every block the module frees (or moves
//! when it grows) is overwritten with zeros first. Key material passes through buffers the
//! module does not own the layout of (a cipher's key schedule inside a library's struct, a
//! KMS reply in an HTTP client's buffer, a collection that reallocates); wiping on free means
//! none of them outlives its use in freed memory, whichever code allocated it.

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, wiping on free.
pub struct Wiping;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// allocator upholds `System`'s contract; `dealloc` only writes inside the block it is given
// back, which the caller owns until the call returns.
unsafe impl GlobalAlloc for Wiping {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout.size()` bytes that this allocator returned
        // (the caller's contract), so writing all of it is in bounds. `explicit_bzero` is the C
        // library's zeroing that the compiler may not remove as a dead store before the free.
        unsafe { libc::explicit_bzero(ptr.cast::<libc::c_void>(), layout.size()) };
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    // `realloc` is the trait's: a new block, a copy, and `dealloc` of the old one, which wipes
    // it. (A system `realloc` would free or shrink the old block unwiped.)
}
