//! The `resviz` binary: parse the command line, dispatch, and turn errors into one line on stderr.

// glibc returns large freed blocks to the OS (mmap/munmap), so every training step
// page-faulted its activations back in and the kernel zeroed them. mimalloc keeps them; the
// wrapper zeroes dfdx's large gradient buffers on both cores (see engine::alloc).
#[global_allocator]
static GLOBAL: resviz::engine::alloc::Allocator = resviz::engine::alloc::Allocator;
use resviz::cli::{self, Cli, Command};
use std::process::ExitCode;

/// Characters of an error message shown; the rest is cut, with the message's length.
const MAX_ERROR_CHARS: usize = 2000;

fn main() -> ExitCode {
    let _ = color_eyre::install();
    let cli = Cli::parse_or_exit();
    let result = match cli.command {
        Some(Command::Probe(args)) => cli::probe::run(&args),
        Some(Command::Train(args)) => cli::train::run(&args),
        Some(Command::Bench(args)) => cli::bench::run(&args),
        Some(Command::Lesion(args)) => cli::lesion::run(&args),
        Some(Command::Shatter(args)) => cli::shatter::run(&args),
        Some(Command::Landscape(args)) => cli::landscape::run(&args),
        Some(Command::Paper(args)) => cli::paper::run(&args),
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
    // The last line goes through the same non-panicking path as every other line on stderr: a
    // full stderr must not turn an orderly failure into a panic.
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<resviz::signals::Interrupted>() {
            Some(i) => {
                cli::output::note(&format!("resviz: {i}"));
                ExitCode::from(i.exit_code())
            }
            None => {
                // An error may quote its input (a 50 MB config, a --models of 100,000 letters):
                // one line of at most a few screens, whatever the input.
                let message = resviz::numfmt::cut(&format!("{e:#}"), MAX_ERROR_CHARS);
                cli::output::note(&format!("resviz: error: {message}"));
                ExitCode::FAILURE
            }
        },
    }
}
