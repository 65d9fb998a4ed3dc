//! [`HostBuf`]: the element buffer behind every host storage. It is either an owned `Vec<T>`
//! or a read-only typed view into bytes owned by someone else (a memory-mapped model file, an
//! `Arc<Vec<u8>>`), so weights in a file become tensors without a copy. Writing to a shared
//! view copies it first (copy-on-write).

use crate::bail;
use crate::error::Result;
use half::{bf16, f16};
use std::sync::Arc;

/// Bytes shared by many buffers: a memory map, a vector, anything that stays put while alive.
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// Element types that may be read straight out of little-endian file bytes: every bit pattern
/// is a valid value and the in-memory layout is the file's on a little-endian host.
///
/// # Safety
/// Implementors must be plain data without padding for which every bit pattern is valid.
pub unsafe trait Pod: Copy + Send + Sync + 'static {
    /// Decodes one value from its little-endian bytes (`size_of::<Self>()` of them).
    fn from_le(bytes: &[u8]) -> Self;
}

// SAFETY: primitive numbers: no padding, every bit pattern valid.
unsafe impl Pod for f32 {
    fn from_le(b: &[u8]) -> Self {
        f32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
}
// SAFETY: as above.
unsafe impl Pod for f16 {
    fn from_le(b: &[u8]) -> Self {
        f16::from_le_bytes([b[0], b[1]])
    }
}
// SAFETY: as above.
unsafe impl Pod for bf16 {
    fn from_le(b: &[u8]) -> Self {
        bf16::from_le_bytes([b[0], b[1]])
    }
}
// SAFETY: as above.
unsafe impl Pod for i64 {
    fn from_le(b: &[u8]) -> Self {
        i64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
    }
}
// SAFETY: as above.
unsafe impl Pod for u8 {
    fn from_le(b: &[u8]) -> Self {
        b[0]
    }
}

/// A typed window into shared bytes. `ptr` points into `owner`'s bytes, is aligned for `T`
/// and has `len` elements behind it; `owner` keeps them alive and nobody writes to them.
struct SharedView<T> {
    owner: SharedBytes,
    ptr: *const T,
    len: usize,
    /// Set when `owner` is this read-only file map: its resident pages may be released.
    file_map: Option<Arc<memmap2::Mmap>>,
}

// SAFETY: the view is read-only and its owner is Send + Sync, so the raw pointer may cross
// threads like a `&[T]` would.
unsafe impl<T: Sync> Send for SharedView<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for SharedView<T> {}

enum Repr<T> {
    Owned(Vec<T>),
    Shared(SharedView<T>),
}

/// An owned vector or a read-only view of shared bytes, dereferencing to `&[T]`.
pub struct HostBuf<T> {
    repr: Repr<T>,
}

impl<T> HostBuf<T> {
    /// Wraps an owned vector.
    pub fn from_vec(v: Vec<T>) -> HostBuf<T> {
        HostBuf {
            repr: Repr::Owned(v),
        }
    }

    /// True when the elements live in bytes shared with another owner (e.g. a file map).
    pub fn is_shared(&self) -> bool {
        matches!(self.repr, Repr::Shared(_))
    }

    pub fn as_slice(&self) -> &[T] {
        match &self.repr {
            Repr::Owned(v) => v,
            // SAFETY: `ptr`/`len` were checked against the owner's bytes at construction and
            // the owner is alive while `self` is.
            Repr::Shared(s) => unsafe { std::slice::from_raw_parts(s.ptr, s.len) },
        }
    }
}

impl<T: Clone> HostBuf<T> {
    /// Mutable access; a shared view is first copied into an owned vector (copy-on-write), so
    /// the other holders of the bytes never see the change.
    pub fn make_mut(&mut self) -> &mut [T] {
        if let Repr::Shared(_) = self.repr {
            self.repr = Repr::Owned(self.as_slice().to_vec());
        }
        match &mut self.repr {
            Repr::Owned(v) => v,
            Repr::Shared(_) => unreachable!("copied above"),
        }
    }

    /// The elements as an owned vector (copied only for a shared view).
    pub fn into_vec(self) -> Vec<T> {
        match self.repr {
            Repr::Owned(v) => v,
            Repr::Shared(_) => self.as_slice().to_vec(),
        }
    }
}

impl<T: Pod> HostBuf<T> {
    /// A view of `len` elements of `owner`'s bytes starting at `byte_offset`, without a copy
    /// when the start is aligned for `T` (and the host is little-endian); otherwise the
    /// elements are decoded into an owned vector. Fails when the range lies outside the bytes.
    pub fn from_shared(owner: SharedBytes, byte_offset: usize, len: usize) -> Result<HostBuf<T>> {
        let size = std::mem::size_of::<T>();
        let bytes = (*owner).as_ref();
        let end = len
            .checked_mul(size)
            .and_then(|n| n.checked_add(byte_offset));
        let Some(end) = end.filter(|&e| e <= bytes.len()) else {
            bail!(
                "host buffer: {len} elements of {size} bytes at byte {byte_offset} do not fit in {} bytes",
                bytes.len()
            );
        };
        let window = &bytes[byte_offset..end];
        let ptr = window.as_ptr();
        if cfg!(target_endian = "little")
            && (ptr as usize).is_multiple_of(std::mem::align_of::<T>())
        {
            let ptr = ptr.cast::<T>();
            return Ok(HostBuf {
                repr: Repr::Shared(SharedView {
                    owner,
                    ptr,
                    len,
                    file_map: None,
                }),
            });
        }
        Ok(HostBuf::from_vec(
            window.chunks_exact(size).map(T::from_le).collect(),
        ))
    }
}

impl<T: Pod> HostBuf<T> {
    /// [`HostBuf::from_shared`] on a read-only file map, which also lets
    /// [`HostBuf::release_resident_pages`] drop the view's pages from memory.
    pub fn from_file_map(
        map: Arc<memmap2::Mmap>,
        byte_offset: usize,
        len: usize,
    ) -> Result<HostBuf<T>> {
        let mut buf = HostBuf::from_shared(map.clone(), byte_offset, len)?;
        if let Repr::Shared(view) = &mut buf.repr {
            view.file_map = Some(map);
        }
        Ok(buf)
    }
}

impl<T> HostBuf<T> {
    /// Asks the OS to drop the resident pages of a view made by [`HostBuf::from_file_map`]
    /// from this process's memory (nothing for other buffers). The bytes stay readable: the
    /// next read pages them back in from the file, or from the page cache, which keeps them.
    /// Used once a weight's bytes were copied into another layout, so the process does not
    /// hold them twice.
    pub fn release_resident_pages(&self) {
        let Repr::Shared(view) = &self.repr else {
            return;
        };
        let Some(map) = &view.file_map else {
            return;
        };
        let offset = view.ptr as usize - map.as_ptr() as usize;
        let bytes = std::mem::size_of_val(self.as_slice());
        #[cfg(unix)]
        // SAFETY: `map` is a read-only map of a file (memmap2's `Mmap`), which nothing writes
        // through: dropping its pages loses nothing, and every view into it stays valid, as
        // the next access faults the same file bytes back in. The range lies inside the map.
        // A failure only means the pages stay resident.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, bytes)
        };
        #[cfg(not(unix))]
        let _ = (offset, bytes);
    }
}

impl<T> std::ops::Deref for HostBuf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T> From<Vec<T>> for HostBuf<T> {
    fn from(v: Vec<T>) -> Self {
        HostBuf::from_vec(v)
    }
}

impl<T: Clone> Clone for HostBuf<T> {
    fn clone(&self) -> Self {
        match &self.repr {
            Repr::Owned(v) => HostBuf::from_vec(v.clone()),
            Repr::Shared(s) => HostBuf {
                repr: Repr::Shared(SharedView {
                    owner: s.owner.clone(),
                    ptr: s.ptr,
                    len: s.len,
                    file_map: s.file_map.clone(),
                }),
            },
        }
    }
}

impl<T: PartialEq> PartialEq for HostBuf<T> {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for HostBuf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.repr {
            Repr::Owned(v) => v.fmt(f),
            Repr::Shared(s) => write!(f, "<{} elements in shared bytes>", s.len),
        }
    }
}

impl<T> FromIterator<T> for HostBuf<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        HostBuf::from_vec(iter.into_iter().collect())
    }
}
