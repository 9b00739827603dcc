//! The `resviz` binary: parse the command line, dispatch, and turn errors into one line on stderr.

use clap::Parser;

// glibc returns large freed blocks to the OS (mmap/munmap), so every training step
// page-faulted its activations back in and the kernel zeroed them. mimalloc keeps them; the
// wrapper zeroes dfdx's large gradient buffers on both cores (see engine::alloc).
#[global_allocator]
static GLOBAL: resviz::engine::alloc::Allocator = resviz::engine::alloc::Allocator;
use resviz::cli::{self, Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let _ = color_eyre::install();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Probe(args)) => cli::probe::run(&args),
        Some(Command::Train(args)) => cli::train::run(&args),
        Some(Command::Bench(args)) => cli::bench::run(&args),
        Some(Command::Lesion(args)) => cli::lesion::run(&args),
        Some(Command::Shatter(args)) => cli::shatter::run(&args),
        Some(Command::Landscape(args)) => cli::landscape::run(&args),
        Some(Command::Tui(args)) => cli::dashboard::run_tui(&args),
        None => cli::dashboard::run_tui(&cli::ExperimentArgs::default()),
        Some(Command::Data {
            command: cli::DataCommand::Fetch { dataset },
        }) => cli::data::fetch(&dataset),
        Some(Command::Replay { file }) => cli::dashboard::run_replay_file(&file),
        Some(Command::Watch { streams }) => cli::watch::run(&streams),
        Some(Command::Import { stream, out }) => cli::import::run(&stream, &out),
        Some(Command::Compare { files, plot }) => {
            cli::dashboard::run_compare(&files, plot.as_deref())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<resviz::signals::Interrupted>() {
            Some(i) => {
                eprintln!("resviz: {i}");
                ExitCode::from(i.exit_code())
            }
            None => {
                eprintln!("resviz: error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
