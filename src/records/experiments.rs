//! The experiments on a run's weights as plain data: which one ([`ExperimentKind`]), the
//! parameters that re-run it, and its results. They cross to the dashboard and into JSON and
//! snapshots, so they live here, below the engine-backed code that computes them
//! (`crate::experiments`).

use crate::config::ExperimentConfig;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

/// Test images a dashboard lesion study evaluates: the first 500 keep a 56-layer study of three
/// runs under a minute while resolving drops of a few percent.
pub const DASHBOARD_LESION_IMAGES: usize = 500;

/// How far above chance an intact net must be for its lesion study to mean something: about
/// four standard errors of a chance-level accuracy on the dashboard's 500 test images.
pub const CHANCE_MARGIN: f64 = 0.05;

/// What a lesion study was run on: enough to run it again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LesionParams {
    /// The experiment the runs were built and trained with.
    pub experiment: ExperimentConfig,
    /// Optimizer steps each run had taken when it was lesioned, in run order.
    pub steps: Vec<u64>,
    /// The snapshot the weights came from, if they were not trained just before.
    pub from: Option<String>,
    /// Images of the test split evaluated (the first ones), and the evaluation batch size.
    pub test_images: usize,
    pub eval_batch: usize,
}

/// One run's accuracies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelLesion {
    pub model: String,
    /// Test accuracy of the intact network.
    pub accuracy: f64,
    /// Per block, in network order.
    pub blocks: Vec<BlockLesion>,
}

/// Test accuracy with one block deleted; `None` where the block cannot be deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockLesion {
    pub name: String,
    pub accuracy: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LesionReport {
    pub models: Vec<ModelLesion>,
    pub params: LesionParams,
}

/// The median of the finite values of `xs` (the mean of the middle two for an even count);
/// `None` if there are none.
pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.retain(|x| x.is_finite());
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

impl ModelLesion {
    /// Intact accuracy minus lesioned accuracy, per deletable block: `(name, drop)`.
    pub fn drops(&self) -> Vec<(&str, f64)> {
        self.blocks
            .iter()
            .filter_map(|b| b.accuracy.map(|a| (b.name.as_str(), self.accuracy - a)))
            .collect()
    }

    /// Median of [`ModelLesion::drops`] (the mean of the middle two for an even count).
    pub fn median_drop(&self) -> Option<f64> {
        median(self.drops().into_iter().map(|(_, d)| d).collect())
    }

    /// The block whose deletion hurts most, with its drop.
    pub fn max_drop(&self) -> Option<(&str, f64)> {
        self.drops().into_iter().max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Whether the intact net is within [`CHANCE_MARGIN`] of chance (1 / `classes`): it has
    /// learned nothing a deletion could remove, so its drops say nothing about its blocks: the
    /// usual case in the first few dozen steps.
    pub fn at_chance(&self, classes: usize) -> bool {
        self.accuracy < 1.0 / classes.max(1) as f64 + CHANCE_MARGIN
    }
}

/// What a shattering measurement runs on: enough to run it again on the same weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShatterParams {
    /// Test-split index of x0 (t = 0) and of x1 (t = 1).
    pub from_image: usize,
    pub to_image: usize,
    /// The logit differentiated; `None`: x1's label.
    pub class: Option<usize>,
    /// Points on the line (t = i / (points − 1)).
    pub points: usize,
    /// Autocorrelation lags 1..=lags.
    pub lags: usize,
    /// Points per forward/backward pass.
    pub eval_batch: usize,
    pub bn: PreciseBn,
    /// Image pairs averaged over: pair k is the test images (from_image + k·s, to_image + k·s)
    /// with s = max(from_image, to_image) + 1, so that the pairs do not share an image.
    #[serde(default = "one")]
    pub pairs: usize,
}

fn one() -> usize {
    1
}

impl Default for ShatterParams {
    fn default() -> Self {
        Self {
            from_image: 0,
            to_image: 1,
            class: None,
            points: 256,
            lags: 16,
            eval_batch: 32,
            bn: PreciseBn {
                batches: 8,
                batch: 64,
                seed: 0,
            },
            pairs: 16,
        }
    }
}

/// One network's measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShatterResult {
    pub model: String,
    pub params: ShatterParams,
    /// The class whose logit was differentiated (resolved from `params.class`).
    pub class: usize,
    /// logit_class(x(t)) and g(t) at t = i / (points − 1).
    pub logit: Vec<f64>,
    pub grad: Vec<f64>,
    /// Autocorrelation of `grad` at lags 1..=lags (mean removed, normalised by lag 0).
    pub autocorr: Vec<f64>,
    /// `autocorr[0]`: the first pair's lag-1 autocorrelation (`class`, `logit`, `grad` and
    /// `autocorr` are the first pair's too).
    pub lag1: f64,
    /// Per pair, its lag-1 autocorrelation; their mean, standard deviation (n − 1) and
    /// interquartile range (linear interpolation); the mean autocorrelation at lags 1..=lags.
    #[serde(default)]
    pub lag1_pairs: Vec<f64>,
    #[serde(default)]
    pub lag1_mean: f64,
    #[serde(default)]
    pub lag1_std: f64,
    #[serde(default)]
    pub lag1_iqr: f64,
    #[serde(default)]
    pub autocorr_mean: Vec<f64>,
}

/// How the mean lag-1 autocorrelation of one family of nets (one variant and knobs, several
/// depths L, L the spec's depth in layers) follows Balduzzi et al.'s two laws: c·2^−L (feedforward
/// nets) and c/√L (ResNets), each with its least-squares scale c and the root-mean-square
/// residual of the fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DepthFit {
    /// The spec with its depth written `L`, e.g. `plain-L` or `v2-L:bn=off`.
    pub family: String,
    pub depths: Vec<usize>,
    pub lag1_means: Vec<f64>,
    pub exp2_scale: f64,
    pub exp2_rms: f64,
    pub inv_sqrt_scale: f64,
    pub inv_sqrt_rms: f64,
    /// "2^-L" or "1/sqrt(L)": the law with the smaller residual.
    pub closer: String,
}

/// What a landscape was computed with: enough to compute it again on the same weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LandscapeParams {
    /// Grid points per axis (G×G over [−1, 1]²), at least 3.
    pub grid: usize,
    /// Points of the 1-D slice β = 0 over α ∈ [−1, 1], at least 2.
    pub slice_points: usize,
    /// The loss is over the first `images` images of the training split.
    pub images: usize,
    /// Seeds d₁ and d₂ (drawn one after the other from one generator).
    pub seed: u64,
    /// Images per forward pass.
    pub eval_batch: usize,
    /// Running statistics re-estimated at θ first ([`PreciseBn::OFF`]: θ's own, as Li et al.).
    pub bn: PreciseBn,
    /// Points per axis of the subgrid over [−1, 1]² where the Hessian's |λ_min/λ_max| is
    /// estimated (odd, so that θ is one of them; 1: θ only; 0: none).
    #[serde(default)]
    pub hessian_grid: usize,
    /// Lanczos steps at most per Hessian point (each two gradients over the loss's images).
    #[serde(default)]
    pub hessian_steps: usize,
}

impl Default for LandscapeParams {
    fn default() -> Self {
        Self {
            grid: 11,
            slice_points: 21,
            images: 256,
            seed: 0,
            eval_batch: 128,
            bn: PreciseBn::OFF,
            hessian_grid: 1,
            hessian_steps: 10,
        }
    }
}

/// One network's landscape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LandscapeResult {
    pub model: String,
    pub params: LandscapeParams,
    /// The grid's coordinates on either axis, −1 to 1.
    pub coords: Vec<f64>,
    /// `losses[j][i]`: the loss at α = coords[i], β = coords[j].
    pub losses: Vec<Vec<f64>>,
    /// α of the slice and its losses (β = 0).
    pub slice_coords: Vec<f64>,
    pub slice: Vec<f64>,
    /// The loss at θ itself, the lowest on the grid and where it is (α, β).
    pub centre_loss: f64,
    pub min_loss: f64,
    pub min_at: [f64; 2],
    /// Fraction of interior grid points where the surface is locally non-convex
    /// ([`nonconvexity`]).
    pub nonconvex_frac: f64,
    /// The basin around θ: grid points whose loss is at most `basin_threshold` (the loss at θ
    /// plus half the chance-level loss ln C, `crate::experiments::landscape::basin_threshold`).
    #[serde(default)]
    pub basin_threshold: f64,
    /// Interior grid points in the basin, and the fraction of them that is non-convex (NaN
    /// if none).
    #[serde(default)]
    pub basin_points: usize,
    #[serde(default)]
    pub basin_nonconvex_frac: f64,
    /// The Hessian's extreme eigenvalues on the subgrid (`params.hessian_grid`), row by row.
    #[serde(default)]
    pub hessian: Vec<HessianPoint>,
    /// Median of |λ_min/λ_max| over `hessian` (NaN if empty).
    #[serde(default)]
    pub hessian_ratio_median: f64,
}

/// The loss's Hessian at θ + α·d₁ + β·d₂: its extreme eigenvalues (Lanczos estimates) and
/// |λ_min/λ_max|, the quantity of Li et al. Fig. 7.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HessianPoint {
    pub at: [f64; 2],
    pub min: f64,
    pub max: f64,
    pub ratio: f64,
}

/// Batch-norm running statistics re-estimated before an experiment: `batches` training-mode
/// forward passes (no backward) of `batch` training images each, drawn without replacement by
/// `seed`, averaged with equal weights (cumulative average). `batches: 0` keeps the net's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreciseBn {
    pub batches: usize,
    pub batch: usize,
    pub seed: u64,
}

/// Which experiment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExperimentKind {
    /// Veit, Wilber, Belongie 2016, §4: test accuracy with each block deleted.
    #[default]
    Lesion,
    /// Balduzzi et al. 2017: the input gradient along a line between two test images.
    Shatter,
    /// Li et al. 2018: the training loss around the weights, on an 11×11 grid.
    Landscape,
}

impl ExperimentKind {
    pub const ALL: [ExperimentKind; 3] = [Self::Lesion, Self::Shatter, Self::Landscape];

    pub fn name(self) -> &'static str {
        match self {
            Self::Lesion => "lesion study",
            Self::Shatter => "gradient shattering",
            Self::Landscape => "loss landscape",
        }
    }

    /// The next kind, for the dashboard's cycling key.
    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|&k| k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// A finished experiment, for every run in run order.
#[derive(Clone, Debug, PartialEq)]
pub enum ExperimentResult {
    Lesion {
        report: Box<LesionReport>,
        /// Classes of the dataset: chance accuracy is 1/classes.
        classes: usize,
    },
    /// One result per run, in run order.
    Shatter(Vec<ShatterResult>),
    Landscape(Vec<LandscapeResult>),
}

impl ExperimentResult {
    pub fn kind(&self) -> ExperimentKind {
        match self {
            Self::Lesion { .. } => ExperimentKind::Lesion,
            Self::Shatter(_) => ExperimentKind::Shatter,
            Self::Landscape(_) => ExperimentKind::Landscape,
        }
    }
}

impl PreciseBn {
    /// The net's own running statistics.
    pub const OFF: PreciseBn = PreciseBn {
        batches: 0,
        batch: 0,
        seed: 0,
    };

    /// The training images of each batch (fewer batches if the split is too small).
    pub fn indices(&self, train_len: usize) -> Vec<Vec<usize>> {
        if self.batch == 0 {
            return Vec::new();
        }
        let amount = (self.batches * self.batch).min(train_len / self.batch * self.batch);
        let mut rng = StdRng::seed_from_u64(self.seed);
        let picked = rand::seq::index::sample(&mut rng, train_len, amount).into_vec();
        picked.chunks(self.batch).map(<[usize]>::to_vec).collect()
    }
}

/// Batch-norm re-estimation before a lesion study: 8 training batches of the experiment's batch
/// size (as `resviz shatter`'s default), drawn by seed 0.
pub fn default_bn(batch: usize) -> PreciseBn {
    PreciseBn {
        batches: 8,
        batch: batch.max(1),
        seed: 0,
    }
}

/// A lesion study with what it was measured under: the batch-norm re-estimation and, per run,
/// its evaluation-mode accuracy against its training accuracy. What `resviz lesion --json`
/// prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LesionStudy {
    #[serde(flatten)]
    pub report: LesionReport,
    /// How the running statistics were re-estimated before measuring (`batches: 0`: the
    /// runs' own were used).
    pub bn: PreciseBn,
    /// Always "intact - lesioned": a positive drop means the deletion hurt.
    pub drop_convention: String,
    /// Per run, in run order.
    pub checks: Vec<AccuracyCheck>,
}

impl LesionStudy {
    /// The study of `models` (run order) measured with `params` after `bn`; `train_acc` holds
    /// each run's training accuracy if known.
    pub fn new(
        models: Vec<ModelLesion>,
        params: LesionParams,
        bn: PreciseBn,
        train_acc: &[Option<f64>],
    ) -> Self {
        let checks = models
            .iter()
            .enumerate()
            .map(|(i, m)| AccuracyCheck::new(m, train_acc.get(i).copied().flatten()))
            .collect();
        Self {
            report: LesionReport { models, params },
            bn,
            drop_convention: "intact - lesioned".into(),
            checks,
        }
    }
}

/// Evaluation-mode (intact, test) accuracy against the run's training accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccuracyCheck {
    pub model: String,
    /// Mean training accuracy over the last 10 % of the run's recorded steps, if known.
    pub train_accuracy: Option<f64>,
    pub eval_accuracy: f64,
    /// Evaluation accuracy more than [`EVAL_GAP`] below training accuracy: the evaluation-mode
    /// net is not the trained one, and its drops are suspect.
    pub eval_below_train: bool,
}

/// How far (in accuracy) evaluation may fall below training before a run is flagged.
pub const EVAL_GAP: f64 = 0.10;

impl AccuracyCheck {
    pub fn new(model: &ModelLesion, train_accuracy: Option<f64>) -> Self {
        Self {
            model: model.model.clone(),
            train_accuracy,
            eval_accuracy: model.accuracy,
            eval_below_train: train_accuracy.is_some_and(|t| model.accuracy < t - EVAL_GAP),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(accuracy: f64) -> ModelLesion {
        ModelLesion {
            model: "v1-20".into(),
            accuracy,
            blocks: vec![BlockLesion {
                name: "stages.0.1".into(),
                accuracy: Some(0.1),
            }],
        }
    }

    #[test]
    fn evaluation_far_below_training_is_flagged() {
        let m = model(0.47);
        assert!(AccuracyCheck::new(&m, Some(0.89)).eval_below_train);
        assert!(
            !AccuracyCheck::new(&m, Some(0.57)).eval_below_train,
            "exactly 10 points"
        );
        assert!(!AccuracyCheck::new(&m, Some(0.50)).eval_below_train);
        assert!(!AccuracyCheck::new(&m, Some(0.30)).eval_below_train);
        assert!(
            !AccuracyCheck::new(&m, None).eval_below_train,
            "unknown: no flag"
        );
    }

    #[test]
    fn a_net_near_chance_is_flagged() {
        assert!(model(0.102).at_chance(10));
        assert!(model(0.149).at_chance(10));
        assert!(!model(0.16).at_chance(10));
        assert!(!model(0.736).at_chance(10));
        assert!(model(0.52).at_chance(2), "two classes: chance is 50 %");
    }
}
