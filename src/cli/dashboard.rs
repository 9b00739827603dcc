//! `resviz`, `resviz tui` and `resviz replay`: wire the trainer and snapshots to the dashboard.

use super::ExperimentArgs;
use crate::config::ExperimentConfig;
use crate::data;
use crate::snapshot::{self, RunSnapshot};
use crate::train::{self, Trainer, TrainerCommand, WorkerOptions};
use crate::tui::app::{App, SaveKind};
use crate::tui::run::{run_dashboard, run_replay};
use color_eyre::eyre::{Result, WrapErr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where `s` and autosaves write.
pub const SAVES_DIR: &str = "saves";

/// The embedded default experiment: see [`ExperimentConfig::dashboard_default`].
pub fn default_experiment() -> ExperimentConfig {
    ExperimentConfig::dashboard_default()
}

pub fn run_tui(args: &ExperimentArgs) -> Result<()> {
    let cfg = args.resolve(default_experiment())?;
    for m in &cfg.models {
        m.parse::<crate::model::ModelSpec>()?;
    }
    let ds = Arc::new(data::load(&cfg.dataset, cfg.seed)?);
    let trainer = Trainer::new(cfg.clone(), ds)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let exit = rt.block_on(async move {
        let h = train::spawn(trainer, WorkerOptions::default());
        let app = App::new(cfg);
        let exit = run_dashboard(app, h.commands.clone(), h.events, save_app).await;
        // Closing the command channel ends the trainer after its current step.
        let _ = h.commands.send(TrainerCommand::Stop);
        drop(h.commands);
        let _ = h.task.await;
        exit
    })?;
    if let Some(saved) = exit.autosave {
        match saved {
            Ok(path) => eprintln!("autosaved {}", path.display()),
            Err(e) => eprintln!("resviz: autosave failed: {e}"),
        }
    }
    Ok(())
}

fn save_app(app: &App, _kind: SaveKind) -> Result<PathBuf, String> {
    let snap = RunSnapshot::new(
        app.config().clone(),
        app.dataset(),
        app.histories().to_vec(),
    );
    snapshot::save(&snap, Path::new(SAVES_DIR)).map_err(|e| e.to_string())
}

pub fn run_replay_file(file: &Path) -> Result<()> {
    let snap = snapshot::load(file)?;
    let app = App::replay(snap.runs, snap.config, snap.dataset);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_replay(app)).wrap_err("dashboard")?;
    Ok(())
}

pub fn run_compare(files: &[PathBuf], plot: Option<&Path>) -> Result<()> {
    let snaps = files
        .iter()
        .map(|f| snapshot::load(f).map(|s| (f.clone(), s)))
        .collect::<Result<Vec<_>, _>>()?;
    print!("{}", snapshot::compare::compare_table(&snaps));
    if let Some(path) = plot {
        let only: Vec<RunSnapshot> = snaps.into_iter().map(|(_, s)| s).collect();
        snapshot::compare::plot_svg(&only, path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
