//! What `probe` and `bench` share: resolve the experiment, parse its models, load the dataset and
//! draw the first seeded batch.

use super::ExperimentArgs;
use crate::config::ExperimentConfig;
use crate::data::{self, Dataset, Sampler};
use crate::model::ModelSpec;
use color_eyre::eyre::Result;

/// A resolved experiment with its dataset and first training batch (no augmentation).
pub struct FirstBatch {
    pub cfg: ExperimentConfig,
    pub specs: Vec<ModelSpec>,
    pub ds: Dataset,
    /// `[batch, C, H, W]` flattened, normalised as fed to the networks.
    pub x: Vec<f32>,
    pub y: Vec<usize>,
}

/// `args` over `base` (see [`ExperimentArgs::resolve`]), the parsed model specs, the dataset, and
/// the first batch of the seeded sampler.
pub fn first_batch(args: &ExperimentArgs, base: ExperimentConfig) -> Result<FirstBatch> {
    let cfg = args.resolve(base)?;
    let specs = cfg
        .models
        .iter()
        .map(|m| m.parse::<ModelSpec>())
        .collect::<Result<Vec<_>, _>>()?;
    let ds = data::load(&cfg.dataset, cfg.seed)?;
    crate::train::budget::check(
        &specs,
        cfg.width,
        cfg.batch,
        crate::train::trainer::input_of(&ds),
    )?;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    Sampler::new(ds.train.len(), cfg.seed).next_batch(&ds, cfg.batch, false, &mut x, &mut y);
    Ok(FirstBatch {
        cfg,
        specs,
        ds,
        x,
        y,
    })
}
