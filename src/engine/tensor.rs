//! Runtime-shaped dfdx tensor aliases and zero-copy slice views of CPU tensors.
//!
//! dfdx 0.13 exposes no public zero-copy read of a tensor's buffer; its `Index` impl does hand out
//! references into the buffer, which is enough to build a slice once contiguity is verified.

use dfdx::prelude::*;

/// Element types the engine computes in: f32 for training, f64 for gradient checks.
pub trait Float:
    Dtype + num_traits::Float + num_traits::FromPrimitive + std::iter::Sum + Send + Sync + 'static
{
    /// The slice as f32, if this is f32: lets f32-only kernels (see `engine::direct`) take over
    /// without a type test at every call site.
    fn as_f32(s: &[Self]) -> Option<&[f32]> {
        let _ = s;
        None
    }
    fn as_f32_mut(s: &mut [Self]) -> Option<&mut [f32]> {
        let _ = s;
        None
    }
}
impl Float for f32 {
    fn as_f32(s: &[f32]) -> Option<&[f32]> {
        Some(s)
    }
    fn as_f32_mut(s: &mut [f32]) -> Option<&mut [f32]> {
        Some(s)
    }
}
impl Float for f64 {}

pub type Shape4 = (usize, usize, usize, usize);
pub type T4<E, T = NoneTape> = Tensor<Shape4, E, Cpu, T>;
pub type T2<E, T = NoneTape> = Tensor<(usize, usize), E, Cpu, T>;
pub type T1<E, T = NoneTape> = Tensor<(usize,), E, Cpu, T>;

/// Read-only view of a contiguous tensor's elements, without copying.
///
/// Panics if the tensor is not laid out contiguously (broadcast or permuted); every tensor the
/// engine produces is contiguous.
pub fn view<S: Shape, E: Unit, T>(t: &Tensor<S, E, Cpu, T>) -> &[E] {
    let n = t.shape().num_elements();
    if n == 0 {
        return &[];
    }
    let first: *const E = &t[first_index(t.shape())];
    let last: *const E = &t[last_index(t.shape())];
    // Both pointers are into the same Vec; if they are n-1 apart the n elements between them are
    // that Vec's contiguous storage.
    assert_eq!(
        (last as usize - first as usize) / std::mem::size_of::<E>(),
        n - 1,
        "engine::view needs a contiguous tensor"
    );
    // SAFETY: `first..=last` lies inside one live allocation owned by `t` (checked above), and the
    // returned slice borrows `t`, so the buffer outlives it and cannot be mutated meanwhile.
    unsafe { std::slice::from_raw_parts(first, n) }
}

/// Mutable view of a contiguous tensor's elements (copy-on-write if the buffer is shared).
pub fn view_mut<S: Shape, E: Unit, T>(t: &mut Tensor<S, E, Cpu, T>) -> &mut [E] {
    let n = t.shape().num_elements();
    if n == 0 {
        return &mut [];
    }
    let (fi, li) = (first_index(t.shape()), last_index(t.shape()));
    // IndexMut makes the Arc'd buffer unique first, so the pointer is into our own copy.
    let first: *mut E = &mut t[fi];
    let last: *const E = &t[li];
    assert_eq!(
        (last as usize - first as usize) / std::mem::size_of::<E>(),
        n - 1,
        "engine::view_mut needs a contiguous tensor"
    );
    // SAFETY: as in `view`; the buffer is uniquely owned after `IndexMut` and `t` is borrowed
    // mutably for the slice's lifetime.
    unsafe { std::slice::from_raw_parts_mut(first, n) }
}

fn first_index<S: Shape>(s: &S) -> S::Concrete {
    // Concrete::default() is all zeros.
    let _ = s;
    S::Concrete::default()
}

fn last_index<S: Shape>(s: &S) -> S::Concrete {
    let mut idx = s.concrete();
    for i in 0..S::NUM_DIMS {
        idx[i] -= 1;
    }
    idx
}

/// `[N, C, H, W]` of a rank-4 tensor as a plain tuple.
pub fn dims4<E: Unit, T>(t: &T4<E, T>) -> Shape4 {
    *t.shape()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_reads_and_writes_in_place() {
        let dev = Cpu::default();
        let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let mut t: T4<f32> = dev.tensor_from_vec(data.clone(), (2, 3, 2, 2));
        assert_eq!(view(&t), &data[..]);
        view_mut(&mut t)[5] = -1.0;
        assert_eq!(t.as_vec()[5], -1.0);
    }

    #[test]
    fn view_mut_does_not_alias_a_shared_buffer() {
        let dev = Cpu::default();
        let a: T1<f32> = dev.tensor_from_vec(vec![1.0, 2.0], (2,));
        let mut b = a.clone();
        view_mut(&mut b)[0] = 9.0;
        assert_eq!(a.as_vec(), vec![1.0, 2.0]);
        assert_eq!(b.as_vec(), vec![9.0, 2.0]);
    }
}
