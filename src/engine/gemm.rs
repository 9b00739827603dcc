//! A checked wrapper around the `gemm` crate's single-threaded matrix product over strided views:
//! the conv paths parallelise over images themselves.

use super::tensor::Float;

/// A strided matrix view: element `(r, c)` at `r·rs + c·cs`.
pub(crate) struct MatRef<'a, E> {
    data: &'a [E],
    cs: isize,
    rs: isize,
}
impl<'a, E> MatRef<'a, E> {
    pub(crate) fn new(data: &'a [E], cs: isize, rs: isize) -> Self {
        MatRef { data, cs, rs }
    }
}
pub(crate) struct Mat<'a, E> {
    data: &'a mut [E],
    cs: isize,
    rs: isize,
}
impl<'a, E> Mat<'a, E> {
    pub(crate) fn new(data: &'a mut [E], cs: isize, rs: isize) -> Self {
        Mat { data, cs, rs }
    }
}

fn fits(len: usize, rows: usize, cols: usize, rs: isize, cs: isize) -> bool {
    rows == 0 || cols == 0 || {
        let last = (rows - 1) as isize * rs + (cols - 1) as isize * cs;
        rs >= 0 && cs >= 0 && (last as usize) < len
    }
}

/// `dst [m, n] = (accumulate ? dst : 0) + lhs [m, k] · rhs [k, n]`, single-threaded gemm.
pub(crate) fn matmul<E: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: Mat<'_, E>,
    accumulate: bool,
    lhs: MatRef<'_, E>,
    rhs: MatRef<'_, E>,
) {
    assert!(
        fits(dst.data.len(), m, n, dst.rs, dst.cs),
        "matmul: dst out of bounds"
    );
    assert!(
        fits(lhs.data.len(), m, k, lhs.rs, lhs.cs),
        "matmul: lhs out of bounds"
    );
    assert!(
        fits(rhs.data.len(), k, n, rhs.rs, rhs.cs),
        "matmul: rhs out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                for c in 0..n {
                    dst.data[(r as isize * dst.rs + c as isize * dst.cs) as usize] = E::zero();
                }
            }
        }
        return;
    }
    // SAFETY: all three views were checked to lie inside their slices; dst is borrowed mutably
    // and cannot alias lhs/rhs. E is f32 or f64, which gemm supports.
    unsafe {
        ::gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            dst.cs,
            dst.rs,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs,
            lhs.rs,
            rhs.data.as_ptr(),
            rhs.cs,
            rhs.rs,
            E::one(),
            E::one(),
            false,
            false,
            false,
            ::gemm::Parallelism::None,
        )
    }
}
