//! The gradient-store side of a backward closure: taking the output gradient out of dfdx's store
//! and freeing it early ([`with_out_grad!`]), and taking both input gradients of a two-input op
//! with their fresh flags ([`with_input_grads!`], see `engine::grads`).

/// The backward of a two-input op `y = op(a, b)`: takes both input gradients out of the store
/// (`take_grad!`: bound to `$ga`, `$gb` with their fresh flags), runs `$body`, which returns
/// Σ g² of the output gradient (0 when untapped), records that in `$tap`, and puts the buffers
/// back. When a and b are one tensor, b's is the emptied entry (`$gb` shorter than `$ga`): the
/// body must then add into `$ga` twice over, and b is put back first so a's buffer is kept.
macro_rules! with_input_grads {
    ($grads:ident, $ag:expr, $bg:expr, $tap:expr,
     |$ga:ident, $fa:ident, $gb:ident, $fb:ident| $body:block) => {{
        let (mut $ga, $fa) = take_grad!($grads, $ag)?;
        let (mut $gb, $fb) = take_grad!($grads, $bg)?;
        let sum_sq: f64 = $body;
        if let Some(t) = &$tap {
            t.backward(sum_sq);
        }
        **$grads.get_or_alloc_mut(&$bg)? = $gb;
        **$grads.get_or_alloc_mut(&$ag)? = $ga;
    }};
}
pub(crate) use with_input_grads;

/// Runs a backward body with the output gradient `gy` taken out of the gradient store.
///
/// The output's producer runs after every consumer of the output (dfdx runs backward ops in
/// reverse order), so nothing reads `gy` afterwards: it is freed here rather than kept to the end
/// of backward (its entry is left empty). That halves the memory a backward pass holds and lets
/// the allocator reuse the buffer for the next gradient while it is still in cache.
macro_rules! with_out_grad {
    ($grads:ident, $yg:expr, |$gy:ident| $body:block) => {{
        let $gy = std::mem::take(&mut **$grads.get_or_alloc_mut(&$yg)?);
        let r: Result<(), CpuError> = (|| $body)();
        drop($gy);
        r
    }};
}
pub(crate) use with_out_grad;
