//! Typed device buffers: [`Buf<T>`] owns `len` values of `T` on an [`Accel`] and frees them
//! when dropped. Every allocation is checked first against the device's free memory, so
//! running out is an error that names the buffer, the bytes asked for and the setting to
//! lower, not a driver code.

use crate::Error;
use crate::accel::{Accel, DevPtr};
use crate::kernel::Arg;
use std::marker::PhantomData;
use std::sync::Arc;

/// The plain value types kernels take: any bit pattern is valid and there is no padding.
pub trait Pod: Copy + Default + Send + Sync + 'static + private::Sealed {}
impl Pod for u32 {}
impl Pod for i32 {}
impl Pod for f32 {}
impl Pod for f64 {}

mod private {
    pub trait Sealed {}
    impl Sealed for u32 {}
    impl Sealed for i32 {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

fn bytes<T: Pod>(v: &[T]) -> &[u8] {
    // SAFETY: Pod types have no padding and are valid as bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), std::mem::size_of_val(v)) }
}

fn bytes_mut<T: Pod>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: Pod types have no padding and every bit pattern is a valid value.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast(), std::mem::size_of_val(v)) }
}

/// What a device allocation is for, for the out-of-memory message: the buffer and the
/// setting that sizes it.
#[derive(Debug, Clone, Copy)]
pub struct Purpose {
    pub what: &'static str,
    pub setting: &'static str,
}

/// `len` values of `T` in device memory.
#[derive(Debug)]
pub struct Buf<T: Pod> {
    accel: Arc<dyn Accel>,
    ptr: DevPtr,
    len: usize,
    _t: PhantomData<T>,
}

/// Refuses an allocation the device cannot hold, with the size needed.
pub fn check_fits(accel: &dyn Accel, bytes: usize, purpose: Purpose) -> Result<(), Error> {
    if let Some((free, total)) = accel.memory()
        && bytes > free
    {
        return Err(Error::OutOfMemory {
            device: accel.name(),
            what: purpose.what,
            bytes,
            free,
            total,
            setting: purpose.setting,
        });
    }
    Ok(())
}

impl<T: Pod> Buf<T> {
    /// `len` zeros.
    pub fn zeros(accel: &Arc<dyn Accel>, len: usize, purpose: Purpose) -> Result<Self, Error> {
        let bytes = len.max(1) * std::mem::size_of::<T>();
        check_fits(accel.as_ref(), bytes, purpose)?;
        let ptr = accel.alloc_zeroed(bytes).map_err(|e| match e {
            Error::Driver(msg) if msg.contains("OUT_OF_MEMORY") => Error::OutOfMemory {
                device: accel.name(),
                what: purpose.what,
                bytes,
                free: accel.memory().map_or(0, |m| m.0),
                total: accel.memory().map_or(0, |m| m.1),
                setting: purpose.setting,
            },
            e => e,
        })?;
        Ok(Buf {
            accel: accel.clone(),
            ptr,
            len,
            _t: PhantomData,
        })
    }

    /// A copy of `data` on the device.
    pub fn from_slice(accel: &Arc<dyn Accel>, data: &[T], purpose: Purpose) -> Result<Self, Error> {
        let b = Self::zeros(accel, data.len(), purpose)?;
        b.write(0, data)?;
        Ok(b)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Overwrites values `at..at + data.len()`.
    pub fn write(&self, at: usize, data: &[T]) -> Result<(), Error> {
        assert!(
            at + data.len() <= self.len,
            "write of {} values at {at} into a buffer of {}",
            data.len(),
            self.len
        );
        if data.is_empty() {
            return Ok(());
        }
        self.accel.upload(self.addr(at), bytes(data))
    }

    /// Reads values `at..at + out.len()`.
    pub fn read(&self, at: usize, out: &mut [T]) -> Result<(), Error> {
        assert!(
            at + out.len() <= self.len,
            "read of {} values at {at} from a buffer of {}",
            out.len(),
            self.len
        );
        if out.is_empty() {
            return Ok(());
        }
        self.accel.download(self.addr(at), bytes_mut(out))
    }

    /// Every value, on the host.
    pub fn to_vec(&self) -> Result<Vec<T>, Error> {
        let mut v = vec![T::default(); self.len];
        self.read(0, &mut v)?;
        Ok(v)
    }

    /// The device address of value `at` (`at <= len`).
    pub fn addr(&self, at: usize) -> DevPtr {
        assert!(at <= self.len, "offset {at} past a buffer of {}", self.len);
        self.ptr + (at * std::mem::size_of::<T>()) as u64
    }

    /// The buffer as a kernel argument.
    pub fn arg(&self) -> Arg {
        Arg::Ptr(self.ptr)
    }

    /// Value `at` onwards as a kernel argument.
    pub fn arg_at(&self, at: usize) -> Arg {
        Arg::Ptr(self.addr(at))
    }
}

impl<T: Pod> Drop for Buf<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from this accel's alloc_zeroed and is freed once; copies
        // from the device are synchronous, so no launch outlives the host's last use.
        unsafe { self.accel.free(self.ptr) };
    }
}

/// The bytes `len` values of `T` take, for estimates before allocating.
pub fn size_of_n<T: Pod>(len: usize) -> usize {
    len * std::mem::size_of::<T>()
}
