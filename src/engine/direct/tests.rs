//! The direct kernel against a naive correlation, on every layout.

use super::*;
use crate::engine::gradcheck::rand_vec;

/// Naive zero-padded cross-correlation in f64.
fn reference(c: &Corr, x: &[f64], w: &[f64], n: usize) -> Vec<f64> {
    let (ho, wo) = (c.ho(), c.wo());
    let mut y = vec![0.0; n * c.cout * ho * wo];
    for i in 0..n {
        for co in 0..c.cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = 0.0;
                    for ci in 0..c.cin {
                        for ky in 0..c.k {
                            for kx in 0..c.k {
                                let (iy, ix) = (oy + ky, ox + kx);
                                if iy < c.pad || ix < c.pad {
                                    continue;
                                }
                                let (iy, ix) = (iy - c.pad, ix - c.pad);
                                if iy >= c.h || ix >= c.w {
                                    continue;
                                }
                                acc += x[((i * c.cin + ci) * c.h + iy) * c.w + ix]
                                    * w[((co * c.cin + ci) * c.k + ky) * c.k + kx];
                            }
                        }
                    }
                    y[((i * c.cout + co) * ho + oy) * wo + ox] = acc;
                }
            }
        }
    }
    y
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&a| a as f32).collect()
}

fn max_rel(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    got.iter()
        .zip(want)
        .map(|(&g, &w)| (g as f64 - w).abs() / scale)
        .fold(0.0, f64::max)
}

/// Shapes that hit every tile height (1–3 vectors) and width (1–8 channels), grids that are
/// not whole vectors, 1–17 input channels, and kernels 2, 3, 5 with every legal padding.
#[test]
fn matches_naive_correlation() {
    if !simd::direct_conv() {
        eprintln!("skipped: no AVX-512F on this CPU");
        return;
    }
    let shapes = [
        (1, 1, 3, 3),
        (3, 5, 7, 6),
        (2, 8, 9, 9),
        (17, 9, 5, 11),
        (4, 20, 12, 13),
        (16, 16, 8, 8),
        (2, 3, 5, 35),
        (1, 2, 3, 16),
        (3, 5, 6, 4),
        (2, 9, 5, 2),
        (17, 3, 3, 1),
    ];
    for (cin, cout, h, w) in shapes {
        for k in [2, 3, 5] {
            for pad in 0..k {
                if h + 2 * pad < k || w + 2 * pad < k {
                    continue;
                }
                let c = Corr {
                    cin,
                    cout,
                    h,
                    w,
                    k,
                    pad,
                };
                let n = 3;
                let xv = rand_vec(n * cin * h * w, 1);
                let wv = rand_vec(cout * cin * k * k, 2);
                let bv = rand_vec(cout, 3);
                let want = reference(&c, &xv, &wv, n);
                let packed = pack(&f32s(&wv), &c);
                let b = f32s(&bv);
                let hw = c.ho() * c.wo();
                let with_bias: Vec<f64> = want
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| v + bv[(i / hw) % cout])
                    .collect();
                let plus_one: Vec<f64> = want.iter().map(|v| v + 1.0).collect();
                for layout in [Layout::Rows, Layout::Grid, Layout::Packed] {
                    if layout == Layout::Packed && !c.packable() {
                        continue;
                    }
                    let mut out = vec![f32::NAN; want.len()];
                    let set = Write::Set(Some(&b));
                    correlate_in(&c, layout, &packed, &f32s(&xv), &mut out, set, None);
                    let err = max_rel(&out, &with_bias);
                    assert!(err < 1e-5, "{c:?} {layout:?}: set err {err}");
                    // Add accumulates onto what is there.
                    let mut acc = vec![1.0f32; want.len()];
                    correlate_in(&c, layout, &packed, &f32s(&xv), &mut acc, Write::Add, None);
                    let err = max_rel(&acc, &plus_one);
                    assert!(err < 1e-5, "{c:?} {layout:?}: add err {err}");
                    check_measured(&c, layout, &packed, &f32s(&xv), &want);
                }
            }
        }
    }
}

/// Measuring while adding (the eq. 5 split at a block whose branch starts with this conv):
/// `out` ends as `old + conv`, and the sums `[Σ old², Σ conv², Σ old·conv]` match f64.
fn check_measured(c: &Corr, layout: Layout, packed: &[f32], x: &[f32], want: &[f64]) {
    let old = f32s(&rand_vec(want.len(), 4));
    let mut out = old.clone();
    let mut sums = [0.0; 3];
    correlate_in(c, layout, packed, x, &mut out, Write::Add, Some(&mut sums));
    let total: Vec<f64> = want
        .iter()
        .zip(&old)
        .map(|(w, &o)| w + f64::from(o))
        .collect();
    let err = max_rel(&out, &total);
    assert!(err < 1e-5, "{c:?} {layout:?}: measured add err {err}");
    let o: Vec<f64> = old.iter().map(|&v| f64::from(v)).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let expect = [dot(&o, &o), dot(want, want), dot(&o, want)];
    let scale = (expect[0] * expect[1]).sqrt();
    for (k, (got, e)) in sums.iter().zip(expect).enumerate() {
        let tol = 1e-4 * if k == 2 { scale } else { e };
        assert!(
            (got - e).abs() <= tol,
            "{c:?} {layout:?}: sum {k} {got} vs {e}"
        );
    }
}

/// The layout rule on the shapes that matter: CIFAR's 32- and 16-wide stages use rows, the
/// 8-wide stage packed rows.
#[test]
fn rows_where_they_waste_less() {
    let c = |hw, k, pad| Corr {
        cin: 1,
        cout: 1,
        h: hw,
        w: hw,
        k,
        pad,
    };
    assert_eq!(c(32, 3, 1).layout(), Layout::Rows);
    assert_eq!(c(16, 3, 1).layout(), Layout::Rows);
    assert_eq!(c(8, 3, 1).layout(), Layout::Packed);
    assert_eq!(c(8, 3, 0).layout(), Layout::Grid);
    assert_eq!(c(7, 3, 1).layout(), Layout::Grid);
    // 8 wide, pad 1: lanes 0 and 8 have no left neighbour, lanes 7 and 15 no right one.
    assert_eq!(c(8, 3, 1).packed_masks(), vec![0xfefe, 0xffff, 0x7f7f]);
    let v = c(20, 3, 1).vectors(Layout::Rows);
    assert_eq!(v.len(), 40);
    assert_eq!(
        v[1],
        Vec16 {
            x: 16,
            dst: 16,
            mask: 0x000f
        }
    );
    assert_eq!(
        v[2],
        Vec16 {
            x: 22,
            dst: 20,
            mask: u16::MAX
        }
    );
}

/// The adjoint packing makes `correlate` compute `Σ gy · ∂y/∂x`: checked through the identity
/// `<corr(x, w), gy> = <x, corr_adj(gy, w)>` in f64 arithmetic on f32-rounded inputs.
#[test]
fn adjoint_is_the_transpose() {
    if !simd::direct_conv() {
        eprintln!("skipped: no AVX-512F on this CPU");
        return;
    }
    for (cin, cout, h, w, k, pad) in [
        (3, 5, 7, 6, 3, 1),
        (16, 9, 8, 8, 3, 1),
        (2, 4, 9, 7, 3, 0),
        (5, 3, 6, 6, 5, 2),
    ] {
        let c = Corr {
            cin,
            cout,
            h,
            w,
            k,
            pad,
        };
        let n = 2;
        let xv = f32s(&rand_vec(n * cin * h * w, 4));
        let wv = f32s(&rand_vec(cout * cin * k * k, 5));
        let gy = f32s(&rand_vec(n * cout * c.ho() * c.wo(), 6));
        let x64: Vec<f64> = xv.iter().map(|&v| v as f64).collect();
        let w64: Vec<f64> = wv.iter().map(|&v| v as f64).collect();
        let y = reference(&c, &x64, &w64, n);
        let lhs: f64 = y.iter().zip(&gy).map(|(a, &b)| a * b as f64).sum();
        let adj = Corr {
            cin: cout,
            cout: cin,
            h: c.ho(),
            w: c.wo(),
            k,
            pad: k - 1 - pad,
        };
        assert_eq!((adj.ho(), adj.wo()), (h, w));
        let mut gx = vec![0.0f32; xv.len()];
        correlate(&adj, &pack_adjoint(&wv, &adj), &gy, &mut gx, Write::Add);
        let rhs: f64 = gx.iter().zip(&x64).map(|(&a, b)| a as f64 * b).sum();
        let scale = gx.iter().map(|&a| (a as f64).abs()).sum::<f64>().max(1.0);
        assert!((lhs - rhs).abs() / scale < 1e-5, "{c:?}: {lhs} vs {rhs}");
    }
}
