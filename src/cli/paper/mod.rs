//! `resviz paper NAME`: one paper's claims, measured on this engine. Each paper trains what it
//! needs from scratch (progress on stderr), then prints one row per quantity: the paper's figure
//! or table, the paper's number where it prints one, the number measured here, and whether the
//! paper's claim holds here. A claim that does not hold is printed as not holding, never left
//! out. `--quick` fits in about 10 minutes on 2 cores; a full run says up front how much it trains.

mod degradation;
mod lesion;
mod table;
mod variants;

use super::PaperArgs;
use color_eyre::eyre::{Result, bail};
use serde::Serialize;

/// The papers `resviz paper` reproduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PaperName {
    /// He et al. 2015, Fig. 1: the degradation problem (a deeper plain net trains to a higher
    /// training loss; the residual net of that depth does not).
    #[value(name = "he2015-fig1")]
    He2015Fig1,
    /// He et al. 2016, Table 1: of the shortcut designs the identity trains best.
    #[value(name = "he2016-table1")]
    He2016Table1,
    /// He et al. 2016, Table 2: of the activation placements full pre-activation trains best.
    #[value(name = "he2016-table2")]
    He2016Table2,
    /// Veit et al. 2016, §4 and Fig. 3: deleting one block barely hurts a ResNet and breaks a
    /// plain net.
    #[value(name = "veit2016")]
    Veit2016,
}

impl PaperName {
    pub fn id(self) -> &'static str {
        match self {
            PaperName::He2015Fig1 => "he2015-fig1",
            PaperName::He2016Table1 => variants::TABLE1.id,
            PaperName::He2016Table2 => variants::TABLE2.id,
            PaperName::Veit2016 => "veit2016",
        }
    }
}

/// One measured quantity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// What is measured, with the paper's figure or table it comes from.
    pub quantity: String,
    /// The run (or runs) it is measured on.
    pub model: String,
    /// The paper's number, where the paper prints one for this quantity.
    pub paper: Option<f64>,
    /// The number measured here (`None`: it could not be measured, e.g. a run never started).
    pub measured: Option<f64>,
    /// Whether the paper's claim holds here; `None` for a figure the claims rest on.
    pub holds: Option<bool>,
}

impl Row {
    fn new(quantity: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            quantity: quantity.into(),
            model: model.into(),
            paper: None,
            measured: None,
            holds: None,
        }
    }
    fn paper(mut self, x: f64) -> Self {
        self.paper = Some(x);
        self
    }
    fn measured(mut self, x: Option<f64>) -> Self {
        self.measured = x.filter(|v| v.is_finite());
        self
    }
    fn holds(mut self, h: bool) -> Self {
        self.holds = Some(h);
        self
    }
}

/// A paper's rows and what they were measured on.
#[derive(Clone, Debug, Serialize)]
pub struct PaperReport {
    pub paper: &'static str,
    /// The paper and the claim, in one line.
    pub claim: String,
    /// The data and settings measured on, and how they differ from the paper's.
    pub setting: String,
    pub rows: Vec<Row>,
}

pub fn run(args: &PaperArgs) -> Result<()> {
    if args.seeds == Some(0) {
        bail!("--seeds must be at least 1");
    }
    if args.seeds.is_some_and(|n| n > 100) {
        bail!("--seeds must be at most 100 (each seed trains every net again)");
    }
    if args.steps == Some(0) {
        bail!("--steps must be at least 1");
    }
    // Before any training: a plot that cannot be drawn must not cost the user the run.
    if args.plot.is_some() {
        bail!(
            "--plot is not drawn for {} yet: run without it",
            args.name.id()
        );
    }
    let report = match args.name {
        PaperName::He2015Fig1 => degradation::run(args)?,
        PaperName::He2016Table1 => variants::run(&variants::TABLE1, args)?,
        PaperName::He2016Table2 => variants::run(&variants::TABLE2, args)?,
        PaperName::Veit2016 => lesion::run(args)?,
    };
    let text = match args.json {
        true => serde_json::to_string(&report)? + "\n",
        false => table::render(&report),
    };
    super::output::print(&text)
}

/// `k` of `n` seeds, as the share the claims need: at least four in five.
fn most(k: usize, n: usize) -> bool {
    n > 0 && 5 * k >= 4 * n
}

use crate::records::experiments::median;

/// Progress of a paper between trainings, on stderr.
fn note(line: &str) {
    super::output::note(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_in_five_is_most() {
        assert!(most(4, 5) && most(5, 5) && most(1, 1));
        assert!(!most(3, 5) && !most(0, 0) && !most(1, 2));
    }

    #[test]
    fn medians_skip_what_was_not_measured() {
        assert_eq!(median(vec![3.0, f64::NAN, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }
}
