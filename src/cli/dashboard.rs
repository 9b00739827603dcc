//! `resviz`, `resviz tui` and `resviz replay`: wire the trainer and snapshots to the dashboard.

use super::ExperimentArgs;
use crate::config::ExperimentConfig;
use crate::data;
use crate::records::TrainerCommand;
use crate::signals::Interrupted;
use crate::snapshot::{self, RunSnapshot};
use crate::train::{self, Trainer, WorkerOptions};
use crate::tui::app::{App, SaveKind};
use crate::tui::run::{run_dashboard, run_replay};
use color_eyre::eyre::{Result, WrapErr, bail};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The embedded default experiment: see [`ExperimentConfig::dashboard_default`].
pub fn default_experiment() -> ExperimentConfig {
    ExperimentConfig::dashboard_default()
}

/// Fail early, in the user's terms, where the dashboard could not draw or read keys: stdout
/// redirected, or no controlling terminal (crossterm then fails with "os error 6").
pub(super) fn need_terminal() -> Result<()> {
    let why = if !std::io::stdout().is_terminal() {
        "standard output is not a terminal"
    } else if !std::io::stdin().is_terminal() && std::fs::File::open("/dev/tty").is_err() {
        "there is no terminal to read keys from"
    } else {
        return Ok(());
    };
    bail!("resviz needs a terminal: {why} (for headless training use `resviz train`)")
}

pub fn run_tui(args: &ExperimentArgs) -> Result<()> {
    let cfg = args.resolve(default_experiment())?;
    for m in &cfg.models {
        m.parse::<crate::model::ModelSpec>()?;
    }
    need_terminal()?;
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
    let saved = match exit.autosave {
        Some(Ok(path)) => {
            super::output::note(&format!("autosaved {}", path.display()));
            format!("; progress autosaved to {}", path.display())
        }
        // Quitting loses the unsaved progress: that is a failure, not a normal end.
        Some(Err(e)) => bail!("autosave failed, the unsaved progress is lost: {e}"),
        None => String::new(),
    };
    match exit.signal {
        Some(signal) => Err(Interrupted { signal, saved }.into()),
        None => Ok(()),
    }
}

pub(super) fn save_app(app: &App, kind: SaveKind) -> Result<PathBuf, String> {
    let snap = RunSnapshot::new(
        app.config_to_save(kind).clone(),
        app.dataset(),
        app.histories_to_save(kind).to_vec(),
    );
    snapshot::save(&snap, Path::new(snapshot::SAVES_DIR)).map_err(|e| e.to_string())
}

pub fn run_replay_file(file: &Path) -> Result<()> {
    let snap = snapshot::load(file)?;
    need_terminal()?;
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
    super::output::print(&snapshot::compare::compare_table(&snaps))?;
    if let Some(path) = plot {
        let only: Vec<RunSnapshot> = snaps.into_iter().map(|(_, s)| s).collect();
        snapshot::compare::plot_svg(&only, path)?;
        super::output::note(&format!("wrote {}", path.display()));
    }
    Ok(())
}
