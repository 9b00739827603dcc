//! Loss landscape (Li et al. 2018, "Visualizing the Loss Landscape of Neural Nets"): the training
//! loss on a fixed set of training images at θ + α·d₁ + β·d₂ over a grid in [−1, 1]², plus the
//! 1-D slice β = 0, with d₁, d₂ Gaussian directions normalised filter by filter to θ's filters.
//!
//! As in the authors' code (`net_plotter.py`, `evaluation.py`, default `--dir_type weights
//! --xignore biasbn --xnorm filter`): every tensor of rank ≥ 2 (conv kernels, the FC weight) is
//! perturbed, each filter (output channel, or output row) of the direction scaled to the norm of
//! θ's filter; biases and batch-norm parameters get a zero direction; batch-norm running
//! statistics are not perturbed and the loss is evaluated in evaluation mode with θ's running
//! statistics (`net.eval()`).
//!
//! The non-convex fraction of the whole grid counts the far field, where a net that is not at
//! a minimum is broken (loss above ln 10) and wrinkled whatever its architecture. Li et al.'s
//! contrast is about the basin around θ, so two measures restrict to it: the non-convex
//! fraction over the basin ([`basin_threshold`]), and the Hessian's |λ_min/λ_max| (their
//! Fig. 7) on a small subgrid around θ ([`super::hessian`]).

use super::hessian::{self, extreme_eigs};
use super::{Experiment, ExperimentError, Passes, Progress, precise_bn, require};
use crate::data::Dataset;
use crate::engine::{self, Float};
use crate::model::Network;
use crate::model::params::ParamTensor;
use crate::records::experiments::HessianPoint;
use crate::records::{LandscapeParams, LandscapeResult};
use dfdx::prelude::{Cpu, Device};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};
use std::sync::atomic::AtomicBool;

impl LandscapeParams {
    /// Whether these parameters can run (on `ds`'s training split, if given).
    pub fn validate(&self, ds: Option<&Dataset>) -> Result<(), ExperimentError> {
        let g = self.grid;
        require(g >= 3, || {
            format!("the grid needs at least 3 points per axis (got {g})")
        })?;
        let s = self.slice_points;
        require(s >= 2, || {
            format!("the slice needs at least 2 points (got {s})")
        })?;
        require(self.eval_batch >= 1, || {
            "the eval batch must be at least 1".into()
        })?;
        let h = self.hessian_grid;
        require(h % 2 == 1 || h == 0, || {
            format!(
                "the Hessian subgrid must have an odd number of points per axis, or 0 (got {h})"
            )
        })?;
        require(h == 0 || self.hessian_steps >= 1, || {
            "the Hessian needs at least 1 Lanczos step".into()
        })?;
        let Some(ds) = ds else { return Ok(()) };
        let n = ds.train.len();
        require(self.images >= 1 && self.images <= n, || {
            format!(
                "images must be in 1..={n} (the training split), got {}",
                self.images
            )
        })
    }
}

/// A direction: one vector per parameter of the store, zero where not perturbed.
pub type Direction<E> = Vec<Vec<E>>;

/// Two Gaussian directions from `seed`, normalised filter by filter to `net`'s filters.
pub fn directions<E: Float>(net: &Network<E>, seed: u64) -> [Direction<E>; 2] {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut one = || {
        net.store
            .params
            .iter()
            .map(|p| {
                let w = p.data();
                // Biases and batch-norm parameters (rank 1) are not perturbed.
                if matches!(p.tensor, ParamTensor::R1(_)) {
                    return vec![E::zero(); w.len()];
                }
                let filters = p.shape()[0];
                let d: Vec<f64> = (0..w.len())
                    .map(|_| StandardNormal.sample(&mut rng))
                    .collect();
                let per = w.len() / filters.max(1);
                let mut out = Vec::with_capacity(w.len());
                for (df, wf) in d.chunks(per.max(1)).zip(w.chunks(per.max(1))) {
                    let wn = wf.iter().map(|v| v.to_f64().unwrap().powi(2)).sum::<f64>();
                    let dn = df.iter().map(|v| v * v).sum::<f64>().sqrt();
                    // Li et al.'s normalize_direction: d · ‖w‖ / (‖d‖ + 1e-10).
                    let s = wn.sqrt() / (dn + 1e-10);
                    out.extend(df.iter().map(|v| E::from_f64(v * s).unwrap()));
                }
                out
            })
            .collect()
    };
    [one(), one()]
}

/// Set `out`'s parameters to θ + a·d₁ + b·d₂ (`theta` the unperturbed net of the same spec),
/// element by element in `E` as `θ + a·d₁ + b·d₂`.
pub fn perturb<E: Float>(
    theta: &Network<E>,
    [d1, d2]: &[Direction<E>; 2],
    (a, b): (f64, f64),
    out: &mut Network<E>,
) {
    let (a, b) = (E::from_f64(a).unwrap(), E::from_f64(b).unwrap());
    for (((p, t), d1), d2) in out
        .store
        .params
        .iter_mut()
        .zip(&theta.store.params)
        .zip(d1)
        .zip(d2)
    {
        for (((o, &w), &x), &y) in p.data_mut().iter_mut().zip(t.data()).zip(d1).zip(d2) {
            *o = w + a * x + b * y;
        }
    }
}

/// Fraction of interior points of `f` (`f[j][i]`, a square grid of side ≥ 3) where the discrete
/// second difference along either axis is negative beyond rounding: f₋ − 2f + f₊ < −1e-5·max|f|
/// over the three points. 0 for a convex surface; NaN for a grid without interior.
pub fn nonconvexity(f: &[Vec<f64>]) -> f64 {
    basin_nonconvexity(f, f64::INFINITY).1
}

/// The basin's bound: the loss at θ plus half the chance-level loss ln `classes` (ln 10 / 2 ≈
/// 1.15 for ten classes). Additive, not a multiple of the loss at θ: near convergence that loss
/// is ~0.01 and 2× it would hold θ alone; half of ln C keeps a net that is below chance level at
/// θ (loss < ½ ln C) inside the region where it still beats chance, which is exactly what
/// excludes the broken far field (loss ≥ ln C) that the whole-grid fraction counts.
pub fn basin_threshold(centre_loss: f64, classes: usize) -> f64 {
    centre_loss + 0.5 * (classes.max(2) as f64).ln()
}

/// `(points, fraction)`: the interior points of `f` whose value is at most `threshold`, and the
/// fraction of them that is non-convex as in [`nonconvexity`] (NaN if there are none).
pub fn basin_nonconvexity(f: &[Vec<f64>], threshold: f64) -> (usize, f64) {
    let g = f.len();
    if g < 3 {
        return (0, f64::NAN);
    }
    let concave = |a: f64, b: f64, c: f64| {
        let tol = 1e-5 * a.abs().max(b.abs()).max(c.abs());
        a - 2.0 * b + c < -tol
    };
    let (mut points, mut count) = (0, 0);
    for j in 1..g - 1 {
        for i in 1..g - 1 {
            if f[j][i].is_nan() || f[j][i] > threshold {
                continue;
            }
            let along_a = concave(f[j][i - 1], f[j][i], f[j][i + 1]);
            let along_b = concave(f[j - 1][i], f[j][i], f[j + 1][i]);
            points += 1;
            count += usize::from(along_a || along_b);
        }
    }
    let frac = if points == 0 {
        f64::NAN
    } else {
        count as f64 / points as f64
    };
    (points, frac)
}

/// The Hessian subgrid's coordinates on either axis: θ alone for 1, else `n` points over [−1, 1].
pub fn hessian_axis(n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![0.0],
        n => axis(n),
    }
}

/// Median of the finite values (NaN if none).
pub fn median(v: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = v.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// Passes [`landscape_images`] makes at most: precise-BN batches, then per loss evaluation one
/// pass per image batch (θ, the grid, the slice), then per Hessian point its gradient passes
/// (fewer where Lanczos stops early: the bar jumps).
pub fn passes_needed(params: &LandscapeParams, bn_batches: usize, image_batches: usize) -> usize {
    let hessian =
        params.hessian_grid.pow(2) * hessian::passes_needed(params.hessian_steps, image_batches);
    bn_batches + (1 + params.grid * params.grid + params.slice_points) * image_batches + hessian
}

/// The landscape of `net` on `batches` (its running statistics first re-estimated from
/// `bn_batches` if any).
pub fn landscape_images<E: Float>(
    net: &Network<E>,
    batches: &[(Vec<E>, Vec<usize>)],
    bn_batches: &[Vec<E>],
    params: &LandscapeParams,
    progress: Progress,
    cancel: &AtomicBool,
) -> Result<LandscapeResult, ExperimentError>
where
    Cpu: Device<E>,
{
    require(params.grid >= 3, || {
        format!(
            "the grid needs at least 3 points per axis (got {})",
            params.grid
        )
    })?;
    require(params.slice_points >= 2, || {
        format!(
            "the slice needs at least 2 points (got {})",
            params.slice_points
        )
    })?;
    require(!batches.is_empty(), || {
        "the loss needs at least 1 image".into()
    })?;
    let total = passes_needed(params, bn_batches.len(), batches.len());
    let mut passes = Passes::new(total, progress, cancel);
    let mut theta = net.clone();
    precise_bn(&mut theta, bn_batches, &mut passes)?;
    theta.set_probes_enabled(false);
    let dirs = directions(&theta, params.seed);
    let mut work = theta.clone();
    let mut loss_at = |a: f64, b: f64, passes: &mut Passes| {
        perturb(&theta, &dirs, (a, b), &mut work);
        // The mean over all images: each batch's mean loss weighted by its size.
        let (mut sum, mut n) = (0.0, 0usize);
        for (x, y) in batches {
            passes.check()?;
            let (loss, _) = engine::on_pool(|| work.eval_pass(x.clone(), y));
            sum += loss * y.len() as f64;
            n += y.len();
            passes.tick();
        }
        Ok::<f64, ExperimentError>(sum / n as f64)
    };
    let centre_loss = loss_at(0.0, 0.0, &mut passes)?;
    let coords = axis(params.grid);
    let mut losses = Vec::with_capacity(params.grid);
    for &b in &coords {
        let row = coords.iter().map(|&a| loss_at(a, b, &mut passes));
        losses.push(row.collect::<Result<Vec<f64>, _>>()?);
    }
    let slice_coords = axis(params.slice_points);
    let slice = slice_coords
        .iter()
        .map(|&a| loss_at(a, 0.0, &mut passes))
        .collect::<Result<Vec<f64>, _>>()?;
    let (min_loss, min_at) = grid_min(&losses, &coords);
    let threshold = basin_threshold(centre_loss, net.opts.classes);
    let (basin_points, basin_nonconvex_frac) = basin_nonconvexity(&losses, threshold);
    let hessian = hessian_grid(&theta, &dirs, batches, params, &mut passes)?;
    Ok(LandscapeResult {
        basin_threshold: threshold,
        basin_points,
        basin_nonconvex_frac,
        hessian_ratio_median: median(hessian.iter().map(|h| h.ratio)),
        hessian,
        model: net.spec.to_string(),
        params: params.clone(),
        nonconvex_frac: nonconvexity(&losses),
        coords,
        losses,
        slice_coords,
        slice,
        centre_loss,
        min_loss,
        min_at,
    })
}

/// The Hessian's extreme eigenvalues at each point of the subgrid, row by row (β outer).
fn hessian_grid<E: Float>(
    theta: &Network<E>,
    dirs: &[Direction<E>; 2],
    batches: &[(Vec<E>, Vec<usize>)],
    params: &LandscapeParams,
    passes: &mut Passes,
) -> Result<Vec<HessianPoint>, ExperimentError>
where
    Cpu: Device<E>,
{
    let coords = hessian_axis(params.hessian_grid);
    let cap = hessian::passes_needed(params.hessian_steps, batches.len());
    let mut work = theta.clone();
    let wide = hessian::widen(batches);
    let mut out = Vec::with_capacity(coords.len().pow(2));
    for &b in &coords {
        for &a in &coords {
            perturb(theta, dirs, (a, b), &mut work);
            let start = passes.done();
            let eigs = extreme_eigs(&work, &wide, (params.hessian_steps, params.seed), passes)?;
            passes.skip(cap.saturating_sub(passes.done() - start));
            out.push(HessianPoint {
                at: [a, b],
                min: eigs.0,
                max: eigs.1,
                ratio: hessian::ratio(eigs),
            });
        }
    }
    Ok(out)
}

/// `n` evenly spaced points from −1 to 1.
pub fn axis(n: usize) -> Vec<f64> {
    let last = (n.max(2) - 1) as f64;
    (0..n).map(|i| -1.0 + 2.0 * i as f64 / last).collect()
}

/// The lowest finite loss of the grid and its (α, β); NaN if none is finite.
fn grid_min(losses: &[Vec<f64>], coords: &[f64]) -> (f64, [f64; 2]) {
    let mut best = (f64::NAN, [f64::NAN; 2]);
    for (j, row) in losses.iter().enumerate() {
        for (i, &l) in row.iter().enumerate() {
            if l.is_finite() && (best.0.is_nan() || l < best.0) {
                best = (l, [coords[i], coords[j]]);
            }
        }
    }
    best
}

/// The landscape prepared on a dataset: the training images of the loss, the batch-norm batches.
pub struct Landscape {
    pub params: LandscapeParams,
    /// `(x, labels)` per evaluation batch.
    pub batches: Vec<(Vec<f32>, Vec<usize>)>,
    pub bn: Vec<Vec<f32>>,
}

impl Landscape {
    /// `params` checked against `ds` and the first `params.images` training images gathered.
    pub fn new(ds: &Dataset, params: &LandscapeParams) -> Result<Self, ExperimentError> {
        params.validate(Some(ds))?;
        let batches = (0..params.images)
            .step_by(params.eval_batch)
            .map(|s| {
                let (mut x, mut y) = (Vec::new(), Vec::new());
                let end = (s + params.eval_batch).min(params.images);
                ds.gather_range(&ds.train, s..end, &mut x, &mut y);
                (x, y)
            })
            .collect();
        Ok(Self {
            params: params.clone(),
            batches,
            bn: params.bn.gather(ds),
        })
    }
}

impl Experiment for Landscape {
    type Output = LandscapeResult;
    const UNIT: &'static str = "passes";

    fn units(&self, _: &Network<f32>) -> usize {
        passes_needed(&self.params, self.bn.len(), self.batches.len())
    }

    fn measure(
        &self,
        net: &Network<f32>,
        _model: &str,
        progress: Progress,
        cancel: &AtomicBool,
    ) -> Result<LandscapeResult, ExperimentError> {
        let b = (&self.batches[..], &self.bn[..]);
        landscape_images(net, b.0, b.1, &self.params, progress, cancel)
    }
}

/// The landscape of `net` on the first `params.images` training images of `ds`.
pub fn landscape(
    net: &Network<f32>,
    ds: &Dataset,
    params: &LandscapeParams,
    progress: Progress,
    cancel: &AtomicBool,
) -> Result<LandscapeResult, ExperimentError> {
    Landscape::new(ds, params)?.measure(net, "", progress, cancel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(f: impl Fn(f64, f64) -> f64) -> Vec<Vec<f64>> {
        (0..5)
            .map(|j| (0..5).map(|i| f(i as f64 - 2.0, j as f64 - 2.0)).collect())
            .collect()
    }

    /// A bowl with one high peak: the whole grid counts the peak, the basin leaves it out.
    #[test]
    fn the_basin_leaves_out_a_high_non_convex_point() {
        let mut f = grid(|a, b| a * a + b * b);
        f[1][3] = 100.0;
        assert!((nonconvexity(&f) - 1.0 / 9.0).abs() < 1e-12);
        let t = basin_threshold(f[2][2], 148); // ln 148 / 2 ≈ 2.5
        assert!((t - 0.5 * 148f64.ln()).abs() < 1e-12);
        assert_eq!(basin_nonconvexity(&f, t), (8, 0.0));
    }

    /// A saddle is concave along α everywhere: every basin point is non-convex.
    #[test]
    fn a_saddle_is_non_convex_in_its_basin() {
        let f = grid(|a, b| b * b - 0.5 * a * a);
        assert_eq!(basin_nonconvexity(&f, 0.25), (3, 1.0));
        assert_eq!(basin_nonconvexity(&f, f64::INFINITY), (9, 1.0));
        let (n, frac) = basin_nonconvexity(&f, -10.0);
        assert!(n == 0 && frac.is_nan());
    }

    #[test]
    fn median_skips_non_finite_values() {
        assert_eq!(median([3.0, f64::NAN, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median([]).is_nan());
        assert_eq!(hessian_axis(1), vec![0.0]);
        assert_eq!(hessian_axis(3), vec![-1.0, 0.0, 1.0]);
    }
}
