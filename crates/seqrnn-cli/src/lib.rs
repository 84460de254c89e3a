//! `seqrnn`: the command-line tool. Argument parsing and printing only; the work is in the
//! `seqrnn` library.
//!
//! The binary's `main` is [`main`]. Other front ends (the Python package) run the same commands
//! from an argument list through [`embed::run`], with their own progress and stop signal.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

mod bench;
mod classify;
mod compare;
pub mod embed;
mod export;
mod flags;
mod forecast;
mod inspect;
mod lm;
mod progress;
mod quantize;
#[cfg(feature = "serve")]
mod serve;
mod speech;
mod tag;
mod training;
mod translate;

/// Train, evaluate and benchmark LSTM and GRU sequence models.
#[derive(Parser, Debug)]
#[command(name = "seqrnn", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a language model (Zaremba et al. presets on Penn Treebank by default).
    Train(lm::TrainArgs),
    /// Perplexity of a trained model on a split.
    Eval(lm::EvalArgs),
    /// Generate text from a trained model.
    Generate(lm::GenerateArgs),
    /// Make a run directory from a PyTorch word_language_model state_dict (safetensors).
    Import(lm::ImportArgs),
    /// Fetch a dataset (Penn Treebank) and verify its checksums.
    Download(DownloadArgs),
    /// Compare runs: train LSTM and GRU (or more) on the same data and budget, or gather
    /// finished runs, and write a report with tables and charts.
    Compare(compare::CompareArgs),
    /// Look inside a trained language model: gate activations and states per token (CSV and
    /// heatmaps), the units that follow properties of the text, gate saturation.
    Inspect(inspect::InspectArgs),
    /// Write an int8 copy of a finished run (any task): weight matrices in 8 bits, products on
    /// the integer kernels, for faster inference with smaller files.
    Quantize(quantize::QuantizeArgs),
    /// Export a finished run to ONNX (`model.onnx`, `preprocess.json`) for ONNX Runtime and
    /// other runtimes; every-step language models so far.
    Export(export::ExportArgs),
    /// Serve trained runs (any task) over HTTP: JSON routes, streamed generation, OpenAI's
    /// completions, Prometheus metrics.
    #[cfg(feature = "serve")]
    Serve(serve::ServeArgs),
    #[command(flatten)]
    Task(TaskCommand),
    /// Measure throughput.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

/// Datasets `seqrnn download` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Dataset {
    /// Penn Treebank, Mikolov's word-level version.
    Ptb,
}

#[derive(clap::Args, Debug)]
struct DownloadArgs {
    /// Which dataset.
    #[arg(value_enum)]
    dataset: Dataset,
    /// Destination folder (default: $SEQRNN_DATA/ptb).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

fn download(a: DownloadArgs) -> Result<()> {
    let Dataset::Ptb = a.dataset;
    let dest = match a.out {
        Some(d) => d,
        None => std::path::PathBuf::from(std::env::var_os("SEQRNN_DATA").context(
            "no --out given and SEQRNN_DATA is not set: say where the corpus should go",
        )?)
        .join("ptb"),
    };
    if seqrnn::data::download::verify_ptb(&dest)? {
        println!("{} already holds the verified PTB files", dest.display());
        return Ok(());
    }
    seqrnn::data::download::download_ptb(&dest)?;
    println!(
        "Penn Treebank downloaded and verified into {}",
        dest.display()
    );
    Ok(())
}

/// Recurrent cell choice on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CellArg {
    /// Long short-term memory.
    Lstm,
    /// Gated recurrent unit, PyTorch's "reset after" form.
    Gru,
    /// Gated recurrent unit, Cho et al.'s "reset before" form (Keras `reset_after=False`).
    GruResetBefore,
    /// The minimal GRU (Feng et al. 2024): gates from the input alone, an element-wise scan.
    #[value(name = "mingru")]
    MinGru,
    /// The minimal LSTM (Feng et al. 2024): gates from the input alone, an element-wise scan.
    #[value(name = "minlstm")]
    MinLstm,
}

impl From<CellArg> for seqrnn::rnn::CellKind {
    fn from(c: CellArg) -> Self {
        use seqrnn::rnn::{CellKind, GruVariant};
        match c {
            CellArg::Lstm => CellKind::Lstm,
            CellArg::Gru => CellKind::Gru(GruVariant::ResetAfter),
            CellArg::GruResetBefore => CellKind::Gru(GruVariant::ResetBefore),
            CellArg::MinGru => CellKind::MinGru,
            CellArg::MinLstm => CellKind::MinLstm,
        }
    }
}

/// Sets the number of threads for matrix products (and rayon's global pool). Inside
/// [`embed::run`] the embedding program has set them, and this does nothing.
pub fn set_threads(threads: Option<usize>) -> Result<()> {
    if embed::active() {
        return Ok(());
    }
    let n = threads.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // Ranks on one machine share its cores.
        (cores / training::ranks_on_this_machine()).max(1)
    });
    anyhow::ensure!(n >= 1, "--threads must be at least 1");
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .context("could not start the thread pool")?;
    seqrnn::linalg::set_threads(n);
    Ok(())
}

/// A training run stopped by Ctrl-C after writing its checkpoint (exit code 130, as a shell
/// reports a process ended by SIGINT).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// With oneMKL's OpenMP threads, an idle OpenMP thread spins for a while before it sleeps, and
/// meanwhile competes with rayon's threads for the cores. A shorter spin than libgomp's default
/// (300,000) measured faster (docs/performance.md). Set before any thread starts; a value the
/// user gives is kept.
#[cfg(feature = "mkl")]
fn shorten_openmp_spin() {
    if std::env::var_os("GOMP_SPINCOUNT").is_none() {
        std::env::set_var("GOMP_SPINCOUNT", "20000");
    }
}

/// What the user can do about a library error, in this tool's flags and commands.
fn advice(e: &anyhow::Error) -> String {
    use seqrnn::Error;
    match e.chain().find_map(|c| c.downcast_ref::<Error>()) {
        Some(Error::Diverged { .. }) => {
            "; try a lower learning rate (--lr) or a gradient clip (--clip)".into()
        }
        Some(Error::NotUtf8 { .. }) => {
            "; if the file is in another encoding, pass --encoding LABEL (e.g. --encoding latin1)"
                .into()
        }
        Some(Error::NoFinishedEpoch { dir, train }) => format!(
            "; continue its training with `{} {train} --resume --out {} ...`",
            training::program(),
            dir.display()
        ),
        _ => String::new(),
    }
}

/// The `seqrnn` binary: parses the process's arguments, runs the command, and gives the exit
/// code (0; 1 after an error, printed; 130 after Ctrl-C stopped a training at a checkpoint).
pub fn main() -> ExitCode {
    #[cfg(feature = "mkl")]
    shorten_openmp_spin();
    let cli = Cli::parse();
    // Under mpirun or srun: this process is one rank of a data-parallel training job.
    let group = match seqrnn::dist::Group::from_env() {
        Ok(g) => g,
        Err(e) => {
            training::say(&format!("error: {e}"));
            return ExitCode::FAILURE;
        }
    };
    training::set_group(group.clone());
    let result = match group.is_distributed() && !cli.command.trains() {
        true => Err(anyhow::anyhow!(
            "only the training commands (train, forecast train, classify train, translate train, tag train, speech train) run across MPI ranks; run this command as one process"
        )),
        false => run(cli.command),
    };
    training::set_group(seqrnn::dist::Group::single());
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Interrupted>() => ExitCode::from(130),
        Err(e) if group.is_distributed() => training::fail_rank(&group, &e, &advice(&e)),
        Err(e) => {
            eprintln!("error: {e:#}{}", advice(&e));
            ExitCode::FAILURE
        }
    };
    // The last clone of the group: MPI is finalised here.
    drop(group);
    code
}

/// Declares the commands of the tasks with a folder of subcommands, one line each: the
/// command's variant, its module and the module's subcommand enum (whose `Train` variant trains
/// and may run as one rank of an MPI job; the module's `run` carries them out).
macro_rules! task_commands {
    ($($(#[$doc:meta])* $variant:ident => $module:ident::$command:ident,)*) => {
        /// The tasks' commands, `seqrnn <task> <subcommand>`.
        #[derive(Subcommand, Debug)]
        enum TaskCommand {
            $($(#[$doc])* $variant {
                #[command(subcommand)]
                what: $module::$command,
            },)*
        }

        impl TaskCommand {
            /// Whether the command trains.
            fn trains(&self) -> bool {
                match self {
                    $(TaskCommand::$variant { what } => matches!(what, $module::$command::Train(_)),)*
                }
            }

            fn run(self) -> Result<()> {
                match self {
                    $(TaskCommand::$variant { what } => $module::run(what),)*
                }
            }
        }
    };
}

task_commands! {
    /// Time-series forecasting: train, evaluate, predict.
    Forecast => forecast::ForecastCommand,
    /// Sequence classification of labelled text: train, evaluate, predict.
    Classify => classify::ClassifyCommand,
    /// Translation with an attentional encoder–decoder: train, evaluate (BLEU), translate.
    Translate => translate::TranslateCommand,
    /// Tagging (named entities, parts of speech): train, evaluate, predict.
    Tag => tag::TagCommand,
    /// Speech recognition with CTC (WAV in, text out): train, evaluate (WER), transcribe.
    Speech => speech::SpeechCommand,
}

impl Command {
    /// Whether the command trains (and may run as one rank of an MPI job).
    fn trains(&self) -> bool {
        match self {
            Command::Train(_) => true,
            Command::Task(t) => t.trains(),
            _ => false,
        }
    }
}

fn run(command: Command) -> Result<()> {
    match command {
        Command::Train(a) => lm::train_cmd(a),
        Command::Eval(a) => lm::eval_cmd(a),
        Command::Generate(a) => lm::generate_cmd(a),
        Command::Import(a) => lm::import_cmd(a),
        Command::Download(a) => download(a),
        Command::Task(t) => t.run(),
        Command::Bench { what } => bench::run(what),
        Command::Compare(a) => compare::compare_cmd(a),
        Command::Inspect(a) => inspect::inspect_cmd(a),
        Command::Quantize(a) => quantize::quantize_cmd(a),
        Command::Export(a) => export::export_cmd(a),
        #[cfg(feature = "serve")]
        Command::Serve(a) => serve::serve_cmd(a),
    }
}
