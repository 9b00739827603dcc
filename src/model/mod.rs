//! Models: `ModelSpec` → runtime `Network` (named PyTorch-style parameters, probes per block),
//! one forward/backward pass with its statistics, and checkpoint export.

pub mod block;
pub mod checkpoint;
mod fold;
pub mod infer;
pub mod input_grad;
pub mod layers;
pub mod lesion;
pub mod network;
pub mod params;
pub mod pass;
pub mod spec;

pub use infer::Inference;
pub use layers::Mode;
pub use network::{NetOptions, Network};
pub use pass::PassStats;
pub use spec::{EditError, Knobs, ModelSpec, SeedPreset, SpecError, Variant, block_names};
