//! `resviz paper NAME`: one paper's claims, measured on this engine. Each paper trains what it
//! needs from scratch (progress on stderr), then prints one row per quantity: the paper's figure
//! or table, the paper's number where it prints one, the number measured here, and whether the
//! paper's claim holds here. A claim that does not hold is printed as not holding, never left
//! out. `--quick` is the short version (measured at 5 to 9 minutes on 2 idle cores, the README
//! has each); a full run says up front how much it trains.

mod balduzzi;
mod degradation;
mod figures;
mod lesion;
mod li2018;
mod plot;
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
    /// Balduzzi et al. 2017: at initialisation a plain net's input gradient along a line of
    /// inputs decorrelates with depth (like 2^−L), a ResNet's much more slowly (like 1/√L).
    #[value(name = "balduzzi2017")]
    Balduzzi2017,
    /// Li et al. 2018, Fig. 5 and 7: near convergence, 56 layers without shortcuts have a
    /// chaotic, non-convex loss landscape and the ResNet a convex basin.
    #[value(name = "li2018")]
    Li2018,
}

impl PaperName {
    pub fn id(self) -> &'static str {
        match self {
            PaperName::He2015Fig1 => "he2015-fig1",
            PaperName::He2016Table1 => variants::TABLE1.id,
            PaperName::He2016Table2 => variants::TABLE2.id,
            PaperName::Veit2016 => "veit2016",
            PaperName::Balduzzi2017 => "balduzzi2017",
            PaperName::Li2018 => "li2018",
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

/// A paper's figure: panels side by side, each of named series (drawn by [`plot::svg`]). Every
/// paper returns one beside its [`PaperReport`] (which is what `--json` prints).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figure {
    pub panels: Vec<Panel>,
}

/// One chart of a [`Figure`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Draw log10 y (values ≤ 0 are left out, and the panel says how many).
    pub log_y: bool,
    pub series: Vec<Series>,
}

/// A named series of points; `colour` is a model spec (or family), coloured as the dashboard
/// colours runs, so a family's points and its fitted curves share a colour.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub name: String,
    pub colour: String,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
    /// Per point, ± this much drawn as a whisker (empty: none).
    pub spread: Vec<f64>,
}

/// How a [`Series`] is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Style {
    #[default]
    Line,
    /// Markers only (measured points), with their whiskers.
    Markers,
    /// A dashed line (a fitted curve).
    Dashed,
    /// A thin line (a second fitted curve).
    Thin,
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
    own_options(args)?;
    // Before any training: a plot that cannot be written must not cost the user the run.
    if let Some(path) = &args.plot {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        super::output::check_out(path, &name, "--plot")?;
    }
    let (report, figure) = match args.name {
        PaperName::He2015Fig1 => degradation::run(args)?,
        PaperName::He2016Table1 => variants::run(&variants::TABLE1, args)?,
        PaperName::He2016Table2 => variants::run(&variants::TABLE2, args)?,
        PaperName::Veit2016 => lesion::run(args)?,
        PaperName::Balduzzi2017 => balduzzi::run(args)?,
        PaperName::Li2018 => li2018::run(args)?,
    };
    if let Some(path) = &args.plot {
        let svg = plot::svg(report.paper, &figure)
            .map_err(|e| color_eyre::eyre::eyre!("cannot draw the plot: {e}"))?;
        super::runs::write_svg(path, &svg)?;
    }
    let text = match args.json {
        true => serde_json::to_string(&report)? + "\n",
        false => table::render(&report),
    };
    super::output::print(&text)
}

/// The options only one paper takes: refused for the others, checked before any training.
fn own_options(args: &PaperArgs) -> Result<()> {
    let theirs = [
        ("--pairs", args.pairs.is_some(), PaperName::Balduzzi2017),
        ("--grid", args.grid.is_some(), PaperName::Li2018),
        (
            "--hessian-grid",
            args.hessian_grid.is_some(),
            PaperName::Li2018,
        ),
        ("--images", args.images.is_some(), PaperName::Li2018),
    ];
    for (option, given, paper) in theirs {
        if given && args.name != paper {
            bail!(
                "{option} is for {} only, not {}",
                paper.id(),
                args.name.id()
            );
        }
    }
    if args.pairs == Some(0) || args.images == Some(0) {
        bail!("--pairs and --images must be at least 1");
    }
    if args.name == PaperName::Balduzzi2017 && args.steps.is_some() {
        bail!("balduzzi2017 measures nets at initialisation: --steps does not apply");
    }
    Ok(())
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
