//! `seqrnn train | eval | generate | import`: the language-model commands.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use clap::{Args, ValueEnum};
use seqrnn::data::{self, Corpus, Encoding, TokenKind, Vocab};
use seqrnn::dropout::{Dropout, DropoutKind};
use seqrnn::io::tensors::TensorFile;
use seqrnn::lm::generate::Decoding;
use seqrnn::lm::{import_state_dict, save_model, LmRunConfig, LmRunData};
use seqrnn::lm::{EvalResult, Prompt, Sampling, Split, Trained};
use seqrnn::lm::{LanguageModel, LmBlock, LmConfig, LmInit, OutputWeights, Regularizers};
use seqrnn::lm::{Preset, TrainConfig, WindowLengths};
use seqrnn::optim::AdamConfig;
use seqrnn::rnn::CellKind;
use seqrnn::run::{Run, RunDir};
use seqrnn::train::{self, KeepCheckpoints, NtAsgd, Optimizer};

use crate::flags::{EncodingFlag, RunFlags, VariationalFlag};
use crate::progress::Shown;
use crate::training::{resume_advice, resumed_run, stop_if_interrupted};
use crate::CellArg;

mod last_token;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TokensArg {
    /// Whitespace-separated words, one sentence a line (Penn Treebank layout).
    Word,
    /// Characters of one text file (90% train, 10% validation).
    Char,
}

impl From<TokensArg> for TokenKind {
    fn from(t: TokensArg) -> Self {
        match t {
            TokensArg::Word => TokenKind::Word,
            TokensArg::Char => TokenKind::Char,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PresetArg {
    /// Zaremba et al. small: 2 × 200, bptt 20, no dropout, 13 epochs.
    Small,
    /// Zaremba et al. medium: 2 × 650, bptt 35, dropout 0.5, 39 epochs.
    Medium,
    /// Zaremba et al. large: 2 × 1500, bptt 35, dropout 0.65, 55 epochs.
    Large,
    /// Medium with tied embeddings and variational dropout, decay compressed into 17 epochs.
    MediumTied,
    /// Character level for Tiny Shakespeare: 2 × 512, locked dropout, weight drop, Adam.
    Shakespeare,
    /// The Keras tutorials' last-token model: window 20, 2 × 200, dropout 0.2, Adam, batch 128.
    Keras,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OptimArg {
    /// SGD with clipping and step decay.
    Sgd,
    /// Adam.
    Adam,
}

/// `seqrnn train`.
#[derive(Args, Debug)]
// --resume with --force is refused with its own message (`training::resumed_run`).
#[command(mut_arg("force", |a| a.conflicts_with(clap::builder::Resettable::Reset)))]
pub struct TrainArgs {
    /// Corpus: a folder with ptb.{train,valid,test}.txt or {train,valid,test}.txt (word), or a
    /// text file or a folder holding input.txt (char). Default: $SEQRNN_DATA/ptb.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Recurrent cell.
    #[arg(long, value_enum, default_value = "lstm")]
    cell: CellArg,
    /// Units per layer.
    #[arg(long)]
    hidden: Option<usize>,
    /// Model and training settings.
    #[command(flatten)]
    lm: LmFlags,
    #[command(flatten)]
    variational: VariationalFlag,
    /// Tie output weights to the embedding (needs embed = hidden).
    #[arg(long)]
    tie: bool,
    /// Start from these weights (PyTorch names, as written by `seqrnn import` or training).
    #[arg(long)]
    init_from: Option<PathBuf>,
    #[command(flatten)]
    run: RunFlags,
    /// The training objective and its flags.
    #[command(flatten)]
    last_token: last_token::LastTokenArgs,
}

/// The model and training flags `seqrnn train` and `seqrnn compare` share: a Zaremba et al.
/// preset, overridden by the flags given.
#[derive(Args, Debug)]
pub struct LmFlags {
    /// Token kind (default: the preset's; word for the Zaremba presets).
    #[arg(long, value_enum)]
    pub tokens: Option<TokensArg>,
    #[command(flatten)]
    pub encoding: EncodingFlag,
    /// Named configuration (docs/results.md); explicit flags override its values.
    #[arg(long, value_enum, default_value = "small")]
    pub preset: PresetArg,
    /// Recurrent layers.
    #[arg(long)]
    pub layers: Option<usize>,
    /// Units of the last recurrent layer, when it differs from the others (AWD-LSTM's smaller
    /// last layer; with tied weights the embedding takes this width). Needs 2 layers or more.
    #[arg(long, value_name = "N")]
    pub last_hidden: Option<usize>,
    /// Embedding width (default: hidden, or --last-hidden with tied weights).
    #[arg(long)]
    pub embed: Option<usize>,
    /// Dropout on non-recurrent connections.
    #[arg(long)]
    pub dropout: Option<f32>,
    /// BPTT window length.
    #[arg(long)]
    pub bptt: Option<usize>,
    /// Batch columns.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Optimiser (default: the preset's; SGD for the Zaremba presets, Adam for keras).
    #[arg(long, value_enum)]
    pub optim: Option<OptimArg>,
    /// Learning rate (mean-loss convention: Zaremba's lr × bptt for SGD).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Maximum global gradient norm (mean-loss convention: Zaremba's clip / bptt).
    #[arg(long)]
    pub clip: Option<f64>,
    /// Learning-rate factor per epoch after --decay-after epochs.
    #[arg(long)]
    pub lr_decay: Option<f64>,
    /// Epochs at the initial learning rate.
    #[arg(long)]
    pub decay_after: Option<usize>,
    /// Epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed of initialisation and dropout.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Uniform initialisation scale (default: the preset's).
    #[arg(long)]
    pub init: Option<f32>,
    /// Evaluation batch size (1: each split as one stream; default: the preset's, 1 for the
    /// Zaremba presets).
    #[arg(long)]
    pub eval_batch: Option<usize>,
    /// Probability of dropping a whole word (embedding row) for a window (AWD-LSTM `dropoute`).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub embed_drop: Option<f32>,
    /// DropConnect on the recurrent weights W_hh, one mask per window (AWD-LSTM `wdrop`).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub weight_drop: Option<f32>,
    /// Dropout on the embedding output (default: --dropout).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub dropout_input: Option<f32>,
    /// Dropout between recurrent layers (default: --dropout).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub dropout_hidden: Option<f32>,
    /// Dropout on the last layer's output (default: --dropout).
    #[arg(long, value_name = "P", allow_negative_numbers = true)]
    pub dropout_output: Option<f32>,
    /// Activation regularisation weight: α · mean(h²) of the last layer's dropped output.
    #[arg(long, value_name = "ALPHA", allow_negative_numbers = true)]
    pub ar: Option<f32>,
    /// Temporal activation regularisation weight: β · mean((h_t − h_{t−1})²).
    #[arg(long, value_name = "BETA", allow_negative_numbers = true)]
    pub tar: Option<f32>,
    /// Random window lengths around --bptt each epoch, the learning rate scaled by length.
    #[arg(long)]
    pub variable_bptt: bool,
    /// L2 weight decay (SGD).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Non-monotonically triggered averaged SGD: average the weights from the first epoch
    /// whose validation loss is worse than the best before the last --nonmono epochs.
    #[arg(long)]
    pub asgd: bool,
    /// Epochs of patience of --asgd.
    #[arg(long, default_value_t = 5, requires = "asgd")]
    pub nonmono: usize,
    /// Pre-norm residual blocks around the recurrent layers: each layer adds its output to a
    /// stream as wide as the embedding, followed by an MLP with its own residual connection
    /// (docs/engine.md). The embedding takes the hidden size.
    #[arg(long)]
    pub residual: bool,
    /// Hidden units of each residual block's MLP (0: none; default: 4 × the hidden size).
    #[arg(long, value_name = "UNITS", requires = "residual")]
    pub mlp: Option<usize>,
}

impl LmFlags {
    /// The preset named by `--preset`.
    pub fn preset(&self) -> Preset {
        match self.preset {
            // The keras preset's settings live with the last-token objective.
            PresetArg::Small | PresetArg::Keras => Preset::Small,
            PresetArg::Medium => Preset::Medium,
            PresetArg::Large => Preset::Large,
            PresetArg::MediumTied => Preset::MediumTied,
            PresetArg::Shakespeare => Preset::Shakespeare,
        }
    }

    /// The token kind: `--tokens`, or the preset's.
    pub fn tokens(&self) -> TokensArg {
        self.tokens.unwrap_or(match self.preset().model().tokens {
            TokenKind::Word => TokensArg::Word,
            TokenKind::Char => TokensArg::Char,
        })
    }

    /// The preset's hidden size unless `hidden` is given.
    pub fn hidden(&self, hidden: Option<usize>) -> usize {
        hidden.unwrap_or(self.preset().model().hidden)
    }

    /// The model: `cell` with `hidden` units over a vocabulary of `vocab`, the rest from the
    /// flags or the preset; `dropout_kind` and `output` as the command asks, or the preset's
    /// when it asks for more (variational dropout, tied weights).
    pub fn model_config(
        &self,
        vocab: usize,
        cell: CellKind,
        hidden: usize,
        dropout_kind: DropoutKind,
        output: OutputWeights,
    ) -> LmConfig {
        let p = self.preset().model();
        let kind = match dropout_kind {
            DropoutKind::Variational => DropoutKind::Variational,
            DropoutKind::Standard => p.dropout.kind,
        };
        let dropout = |p: Option<f32>| p.map(|p| Dropout { p, kind });
        let given = |flag: Option<Dropout>, preset: Option<Dropout>| {
            flag.or(preset.map(|d| Dropout { kind, ..d }))
        };
        let reg = Regularizers {
            embed_drop: self.embed_drop.unwrap_or(p.reg.embed_drop),
            // A preset's DropConnect acts on W_hh, which the minimal cells do not have and
            // residual blocks do not take.
            weight_drop: self
                .weight_drop
                .unwrap_or(match cell.is_minimal() || self.residual {
                    true => 0.0,
                    false => p.reg.weight_drop,
                }),
            input: given(dropout(self.dropout_input), p.reg.input),
            hidden: given(dropout(self.dropout_hidden), p.reg.hidden),
            output: given(dropout(self.dropout_output), p.reg.output),
            ar: self.ar.unwrap_or(p.reg.ar),
            tar: self.tar.unwrap_or(p.reg.tar),
        };
        let output = match output {
            OutputWeights::Tied => OutputWeights::Tied,
            OutputWeights::Separate => p.output,
        };
        // The decoder reads the last layer: tied weights give the embedding its width.
        let decoder_input = match output {
            OutputWeights::Tied => self.last_hidden.unwrap_or(hidden),
            OutputWeights::Separate => hidden,
        };
        // Residual blocks need the stream as wide as the layers.
        let (preset_embed, block) = match self.residual {
            true => (
                None,
                LmBlock::Residual {
                    mlp: self.mlp.unwrap_or(4 * hidden),
                },
            ),
            false => (p.embed, LmBlock::Plain),
        };
        LmConfig {
            block,
            vocab,
            embed: self.embed.or(preset_embed).unwrap_or(decoder_input),
            cell,
            hidden,
            layers: self.layers.unwrap_or(p.layers),
            last_hidden: self.last_hidden,
            dropout: Dropout {
                p: self.dropout.unwrap_or(p.dropout.p),
                kind,
            },
            output,
            reg,
        }
    }

    /// The training settings, with the step limit and checkpointing given by the command.
    pub fn train_config(
        &self,
        max_steps: Option<u64>,
        checkpoint_every: Option<u64>,
        keep: KeepCheckpoints,
    ) -> TrainConfig {
        let p = self.preset().train_config();
        let preset_adam = matches!(p.optimizer, Optimizer::Adam(_));
        let optim = self.optim.unwrap_or(match preset_adam {
            true => OptimArg::Adam,
            false => OptimArg::Sgd,
        });
        // The preset's learning-rate settings hold for its own optimiser.
        let own = (optim == OptimArg::Adam) == preset_adam;
        TrainConfig {
            bptt: self.bptt.unwrap_or(p.bptt),
            batch: self.batch.unwrap_or(p.batch),
            optimizer: match optim {
                OptimArg::Sgd => Optimizer::Sgd,
                OptimArg::Adam => Optimizer::Adam(AdamConfig::default()),
            },
            lr: self.lr.unwrap_or(match (optim, own) {
                (_, true) => p.lr,
                (OptimArg::Sgd, false) => Preset::Small.train_config().lr,
                (OptimArg::Adam, false) => 1e-3,
            }),
            clip: Some(self.clip.unwrap_or(p.clip.unwrap_or(0.25))),
            lr_decay: self.lr_decay.unwrap_or(match (optim, own) {
                (_, true) => p.lr_decay,
                (OptimArg::Sgd, false) => p.lr_decay,
                (OptimArg::Adam, false) => 1.0,
            }),
            decay_after: self.decay_after.unwrap_or(p.decay_after),
            epochs: self.epochs.unwrap_or(p.epochs),
            max_steps,
            seed: self.seed,
            eval_batch: self.eval_batch.unwrap_or(p.eval_batch),
            checkpoint_every,
            keep,
            windows: match self.variable_bptt {
                true => WindowLengths::Variable,
                false => p.windows,
            },
            weight_decay: self.weight_decay.unwrap_or(p.weight_decay),
            asgd: match self.asgd {
                true => Some(NtAsgd {
                    nonmono: self.nonmono,
                }),
                false => p.asgd,
            },
        }
    }

    /// The uniform initialisation scale.
    pub fn init_scale(&self) -> f32 {
        self.init.unwrap_or(self.preset().model().init)
    }
}

pub(crate) fn default_data(tokens: TokensArg) -> Result<PathBuf> {
    let base = std::env::var_os("SEQRNN_DATA").context(
        "no --data given and SEQRNN_DATA is not set: point --data at a corpus folder (e.g. --data ../shared/data/ptb)",
    )?;
    Ok(match tokens {
        TokensArg::Word => PathBuf::from(base).join("ptb"),
        TokensArg::Char => PathBuf::from(base).join("tinyshakespeare"),
    })
}

/// The corpus at `path` (the library's errors name the file and line: the context does not
/// repeat it).
pub(crate) fn load_corpus(path: &Path, tokens: TokensArg, encoding: Encoding) -> Result<Corpus> {
    data::load_corpus(path, tokens.into(), encoding).context("could not load the corpus")
}

fn train_title(cfg: &LmConfig, tokens: TokensArg) -> String {
    let last = cfg
        .last_hidden
        .map(|n| format!(" (last layer {n})"))
        .unwrap_or_default();
    let residual = match cfg.block {
        LmBlock::Plain => "",
        LmBlock::Residual { .. } => ", residual",
    };
    format!(
        "{} {}×{}{last}{residual} ({} level)",
        cfg.cell.name().to_uppercase(),
        cfg.layers,
        cfg.hidden,
        match tokens {
            TokensArg::Word => "word",
            TokensArg::Char => "character",
        }
    )
}

/// The corpus of `--data`, or the default one of the token kind.
fn data_path(data: Option<&Path>, tokens: TokensArg) -> Result<PathBuf> {
    match data {
        Some(p) => Ok(p.to_path_buf()),
        None => default_data(tokens),
    }
}

/// The corpus to train on, from `path`, in `encoding`.
fn train_corpus(a: &TrainArgs, path: &Path, encoding: Encoding) -> Result<Corpus> {
    load_corpus(path, a.lm.tokens(), encoding)
}

/// The encoding of the corpus: `--encoding`, else a resumed run's, else UTF-8.
fn corpus_encoding(a: &TrainArgs, resumed: Option<&Run>) -> Result<Encoding> {
    Ok(match resumed {
        Some(run) => {
            a.lm.encoding
                .or_run(LmRunConfig::load(run.dir())?.data.encoding)
        }
        None => a.lm.encoding.get(),
    })
}

/// A resumed run goes on only with the corpus it was trained on.
fn check_vocab(run: &Run, corpus: &Corpus, data_path: &Path) -> Result<()> {
    let vocab = Vocab::load(&run.dir().vocab_path())?;
    ensure!(
        vocab == corpus.vocab,
        "the corpus at {} gives a different vocabulary from the run's vocab.txt: resume with the corpus the run was trained on",
        data_path.display()
    );
    Ok(())
}

/// The run to train in (see [`crate::training::open_run`]); a fresh one gets the corpus'
/// vocabulary.
fn open_run(
    resumed: Option<Run>,
    a: &TrainArgs,
    config: &impl serde::Serialize,
    corpus: &Corpus,
    data_path: &Path,
) -> Result<Run> {
    if let Some(run) = &resumed {
        check_vocab(run, corpus, data_path)?;
    }
    crate::training::open_run(resumed, &a.run, config, |run| {
        Ok(corpus.vocab.save(&run.dir().vocab_path())?)
    })
}

pub fn train_cmd(a: TrainArgs) -> Result<()> {
    if last_token::selected(&a)? {
        return last_token::train_cmd(a);
    }
    crate::set_threads(a.run.threads)?;
    let data_path = data_path(a.data.as_deref(), a.lm.tokens())?;
    let resumed = resumed_run(&a.run.out, a.run.resume, a.run.force)?;
    let corpus = train_corpus(&a, &data_path, corpus_encoding(&a, resumed.as_ref())?)?;
    let (run_config, train_cfg) = match &resumed {
        Some(run) => resumed_config(&a, run)?,
        None => fresh_config(&a, &corpus),
    };
    let model_cfg = run_config.model;
    model_cfg.validate()?;
    train_cfg.validate()?;
    let model = LanguageModel::new(model_cfg)?;
    // Refuse splits too small to batch before anything is written.
    data::Batched::new(&corpus.train, train_cfg.batch).context("training split")?;
    data::Batched::new(&corpus.valid, train_cfg.eval_batch).context("validation split")?;
    if let Some(test) = &corpus.test {
        data::Batched::new(test, train_cfg.eval_batch).context("test split")?;
    }
    let mut params = match (&resumed, &a.init_from) {
        (Some(_), _) => vec![0.0; model.num_params()],
        (None, Some(path)) => {
            model
                .param_layout()
                .from_file(&TensorFile::load(path)?, path, "a model")?
        }
        (None, None) => model.init_params(LmInit::Uniform(a.lm.init_scale()), a.lm.seed)?,
    };
    let run = open_run(resumed, &a, &run_config, &corpus, &data_path)?;
    let title = train_title(&model_cfg, a.lm.tokens());
    if crate::training::is_root() {
        eprintln!(
            "{title}: {} parameters, vocabulary {}, {} train tokens, bptt {}, batch {}, {} thread(s)",
            model.num_params(),
            model_cfg.vocab,
            corpus.train.len(),
            train_cfg.bptt,
            train_cfg.batch,
            seqrnn::linalg::threads()
        );
    }
    let mut progress = crate::training::progress(Shown::Perplexity)?;
    let t0 = std::time::Instant::now();
    let outcome = seqrnn::lm::train(
        &model,
        &mut params,
        &corpus,
        &train_cfg,
        &run,
        &title,
        progress.as_mut(),
    );
    drop(progress);
    let outcome = outcome.map_err(|e| resume_advice(e, &run))?;
    stop_if_interrupted(outcome.fit.end, outcome.fit.steps, &run)?;
    crate::training::report_allreduce(&outcome.fit);
    if crate::training::is_root() {
        let secs = t0.elapsed().as_secs_f64();
        let (valid, test, fit) = (outcome.best_valid_ppl, outcome.test_ppl, &outcome.fit);
        write_summary(&run, valid, test, fit, secs)?;
        print_result(&a, (valid, test), fit.epochs.len(), fit.steps, secs);
    }
    Ok(())
}

/// A fresh run's configuration: the preset, overridden by the flags given.
fn fresh_config(a: &TrainArgs, corpus: &Corpus) -> (LmRunConfig, TrainConfig) {
    let model = a.lm.model_config(
        corpus.vocab.len(),
        CellKind::from(a.cell),
        a.lm.hidden(a.hidden),
        a.variational.kind(),
        match a.tie {
            true => OutputWeights::Tied,
            false => OutputWeights::Separate,
        },
    );
    let checkpoint_every = a.run.checkpoint_every(None);
    let keep = a.run.keep(KeepCheckpoints::Latest);
    let t = a.lm.train_config(a.run.max_steps, checkpoint_every, keep);
    let mut train = serde_json::to_value(t).unwrap_or_default();
    if let Some(o) = train.as_object_mut() {
        // For the record: results depend on the thread count (see docs/reliability.md).
        o.insert("threads".into(), seqrnn::linalg::threads().into());
    }
    let tokens = TokenKind::from(a.lm.tokens()).into();
    let encoding = a.lm.encoding.get();
    let rc = LmRunConfig::new(model, train, LmRunData { tokens, encoding });
    (rc, t)
}

/// Warns when a run resumes with another thread count than it was trained with (`trained`).
fn warn_threads(trained: usize) {
    let now = seqrnn::linalg::threads();
    if trained != 0 && trained != now {
        eprintln!(
            "warning: the run was trained with {trained} thread(s) and resumes with {now}: the result will differ in the last bits from an uninterrupted run (pass --threads {trained} to reproduce it exactly)"
        );
    }
}

/// A resumed run's configuration: its own settings, with a new epoch count, step limit and
/// checkpointing when given.
fn resumed_config(a: &TrainArgs, run: &Run) -> Result<(LmRunConfig, TrainConfig)> {
    let mut rc = LmRunConfig::load(run.dir())?;
    rc.data.encoding = a.lm.encoding.or_run(rc.data.encoding);
    let mut t: TrainConfig = serde_json::from_value(rc.train.clone())
        .context("the run's config.json holds no readable training settings")?;
    if let Some(e) = a.lm.epochs {
        t.epochs = e;
    }
    t.max_steps = a.run.max_steps;
    t.checkpoint_every = a.run.checkpoint_every(t.checkpoint_every);
    t.keep = a.run.keep(t.keep);
    let threads = rc.train.get("threads").cloned();
    if let Some(n) = threads.as_ref().and_then(|v| v.as_u64()) {
        warn_threads(n as usize);
    }
    rc.train = serde_json::to_value(t)?;
    if let (Some(o), Some(n)) = (rc.train.as_object_mut(), threads) {
        o.insert("threads".into(), n);
    }
    Ok((rc, t))
}

/// Writes the run's `summary.json`: the final figures, the training time over every sitting
/// (the sum of the epochs' seconds, validation included) and the thread count.
fn write_summary(
    run: &Run,
    valid_ppl: f64,
    test_ppl: Option<f64>,
    f: &train::FitOutcome,
    secs: f64,
) -> Result<()> {
    let v = serde_json::json!({
        "valid_ppl": valid_ppl,
        "test_ppl": test_ppl,
        "best_epoch": f.best_epoch,
        "epochs": f.epochs.iter().filter(|r| r.epoch_end).count(),
        "steps": f.steps,
        "train_seconds": f.epochs.iter().filter(|r| r.epoch_end).map(|r| r.seconds).sum::<f64>(),
        "train_threads": seqrnn::linalg::threads(),
        "seconds": secs,
    });
    run.finish(&v)
        .with_context(|| format!("could not write {}", run.dir().summary_path().display()))
}

/// The best validation perplexity and the test perplexity (`ppl`), as one JSON object with
/// `--json`, else as a line.
fn print_result(a: &TrainArgs, ppl: (f64, Option<f64>), epochs: usize, steps: u64, secs: f64) {
    let (valid_ppl, test_ppl) = ppl;
    if a.run.json {
        let v = serde_json::json!({
            "valid_ppl": valid_ppl,
            "test_ppl": test_ppl,
            "epochs": epochs,
            "steps": steps,
            "seconds": secs,
            "run": a.run.out,
        });
        println!("{v}");
    } else {
        println!(
            "best validation perplexity {valid_ppl:.2}{}; {epochs} epochs, {steps} steps, {secs:.0} s; run in {}",
            test_ppl
                .map(|p| format!(", test perplexity {p:.2} (best-on-validation weights)"))
                .unwrap_or_default(),
            a.run.out.display()
        );
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    Valid,
    Test,
}

/// `seqrnn eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run directory (from `train` or `import`).
    #[arg(long)]
    model: PathBuf,
    /// Corpus, as for `train` (default: $SEQRNN_DATA/ptb or tinyshakespeare).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Split.
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,
    #[command(flatten)]
    encoding: EncodingFlag,
    /// Batch columns (1: the split as one stream).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn eval_cmd(a: EvalArgs) -> Result<()> {
    if seqrnn::last_token::LastTokenRunConfig::is_run(&a.model) {
        return last_token::eval_cmd(a);
    }
    crate::set_threads(a.threads)?;
    ensure!(a.batch >= 1, "--batch must be at least 1");
    let lm = Trained::load(&a.model)?;
    let encoding = a.encoding.or_run(lm.encoding());
    let (stream, key) = eval_split(&a, lm.token_kind(), |d, s| lm.split(d, s, encoding))?;
    let r = lm.perplexity(&stream, a.batch)?;
    print_eval(&a, key, &r, &format!("batch {}", a.batch));
    Ok(())
}

/// The tokens `seqrnn eval` scores and the split's name: the split of `--data` (or of the
/// default corpus of the run's token `kind`), read by `read`.
fn eval_split(
    a: &EvalArgs,
    kind: TokenKind,
    read: impl FnOnce(&Path, Split) -> seqrnn::error::Result<(Vec<u32>, usize)>,
) -> Result<(Vec<u32>, &'static str)> {
    let tokens = match kind {
        TokenKind::Word => TokensArg::Word,
        TokenKind::Char => TokensArg::Char,
    };
    let data_path = data_path(a.data.as_deref(), tokens)?;
    let (split, key) = match a.split {
        SplitArg::Valid => (Split::Valid, "valid"),
        SplitArg::Test => (Split::Test, "test"),
    };
    let (stream, unknown) = read(&data_path, split)?;
    if unknown > 0 {
        eprintln!(
            "note: {unknown} tokens of the {key} split are not in the vocabulary and count as <unk>"
        );
    }
    Ok((stream, key))
}

/// The perplexity of the `key` split, as one JSON object with `--json`, else as a line that
/// says `how` it was read.
fn print_eval(a: &EvalArgs, key: &str, r: &EvalResult, how: &str) {
    if a.json {
        let v = serde_json::json!({
            format!("{key}_ppl"): r.ppl,
            format!("{key}_loss"): r.loss,
            "tokens": r.tokens,
            "tokens_per_s": r.tokens_per_s,
        });
        println!("{v}");
    } else {
        println!(
            "perplexity {:.2} (cross-entropy {:.4} nats/token) over {} tokens, {how}, {:.0} tokens/s",
            r.ppl, r.loss, r.tokens, r.tokens_per_s
        );
    }
}

/// `seqrnn generate`.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Run directory.
    #[arg(long)]
    model: PathBuf,
    /// Text to start from (default: a sentence boundary).
    #[arg(long)]
    prompt: Option<String>,
    /// Tokens to generate.
    #[arg(long, default_value_t = 100)]
    tokens: usize,
    /// Sampling temperature (> 0).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Sample only among the K most probable tokens.
    #[arg(long)]
    top_k: Option<usize>,
    /// Sample only among the most probable tokens totalling probability P (nucleus).
    #[arg(long)]
    top_p: Option<f32>,
    /// Always take the most probable token.
    #[arg(long)]
    greedy: bool,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads (default: 1; generation is latency-bound).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn generate_cmd(a: GenerateArgs) -> Result<()> {
    crate::set_threads(Some(a.threads.unwrap_or(1)))?;
    let decoding = if a.greedy {
        Decoding::Greedy
    } else {
        Decoding::Sample {
            temperature: a.temperature,
            top_k: a.top_k,
            top_p: a.top_p,
        }
    };
    let sampling = Sampling {
        decoding,
        seed: a.seed,
    };
    let prompt = a.prompt.as_deref().unwrap_or("");
    let text = match seqrnn::last_token::LastTokenRunConfig::is_run(&a.model) {
        true => {
            let lm = seqrnn::last_token::Trained::load(&a.model)?;
            decoding.validate()?;
            generated(
                lm.encode(prompt)?,
                |ids| lm.generate_ids(ids, a.tokens, &sampling),
                |ids| lm.decode(ids),
            )?
        }
        false => {
            let lm = Trained::load(&a.model)?;
            decoding.validate()?;
            generated(
                lm.encode(prompt)?,
                |ids| lm.generate_ids(ids, a.tokens, &sampling),
                |ids| lm.decode(ids),
            )?
        }
    };
    println!("{text}");
    Ok(())
}

/// The prompt and the tokens `generate` adds to it, as text; warns of the prompt's unknown
/// words.
fn generated(
    prompt: Prompt,
    generate: impl FnOnce(&[u32]) -> seqrnn::error::Result<Vec<u32>>,
    decode: impl FnOnce(&[u32]) -> String,
) -> Result<String> {
    if !prompt.unknown.is_empty() {
        eprintln!(
            "warning: not in the vocabulary, read as <unk>: {}",
            prompt.unknown.join(" ")
        );
    }
    let mut all = prompt.ids.clone();
    all.extend(generate(&prompt.ids)?);
    Ok(decode(&all))
}

/// `seqrnn import`: PyTorch weights (`--torch`) or a Keras model (`--keras`), exactly one.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["torch", "keras"])))]
pub struct ImportArgs {
    /// A PyTorch word_language_model state_dict saved with safetensors (`encoder.weight`,
    /// `rnn.weight_ih_l0`, …, `decoder.weight`, `decoder.bias`).
    #[arg(long)]
    torch: Option<PathBuf>,
    /// A Keras 3 `.keras` archive of a Sequential Embedding → LSTM/GRU → Dropout → Dense(softmax)
    /// model: a language model (every-step when the last recurrent layer returns its
    /// sequences, last-token otherwise), or with --labels a text classifier.
    #[arg(long)]
    keras: Option<PathBuf>,
    /// The vocabulary, one token per line in id order.
    #[arg(long)]
    vocab: PathBuf,
    /// With --keras: the class names of a classifier, one a line in class-index order.
    #[arg(long, conflicts_with = "torch")]
    labels: Option<PathBuf>,
    /// Run directory to create.
    #[arg(long)]
    out: PathBuf,
    /// Token kind of the vocabulary.
    #[arg(long, value_enum, default_value = "word")]
    tokens: TokensArg,
    /// Overwrite a run in --out.
    #[arg(long)]
    force: bool,
}

pub fn import_cmd(a: ImportArgs) -> Result<()> {
    let run = RunDir::new(&a.out);
    if run.holds_run() && !a.force {
        bail!(
            "{} already holds a run: pass --force to replace it",
            a.out.display()
        );
    }
    match (&a.torch, &a.keras) {
        (Some(torch), _) => import_torch(&a, torch, &run),
        (None, Some(keras)) => {
            let source = seqrnn::tasks::KerasSource {
                archive: keras.clone(),
                vocab: a.vocab.clone(),
                labels: a.labels.clone(),
                tokens: TokenKind::from(a.tokens),
            };
            let imported = seqrnn::tasks::import_keras(&source, &run)?;
            println!("imported {} into {}", imported.describe(), a.out.display());
            Ok(())
        }
        (None, None) => bail!("give --torch or --keras"),
    }
}

fn import_torch(a: &ImportArgs, torch: &Path, run: &RunDir) -> Result<()> {
    let file = TensorFile::load(torch)?;
    let (model, params) = import_state_dict(&file, torch)?;
    let config = *model.config();
    let (v, e, h, layers, cell) = (
        config.vocab,
        config.embed,
        config.hidden,
        config.layers,
        config.cell,
    );
    let vocab = Vocab::load(&a.vocab)?;
    ensure!(
        vocab.len() == v,
        "{} holds {} tokens but encoder.weight has {v} rows",
        a.vocab.display(),
        vocab.len()
    );
    run.create()?;
    vocab.save(&run.vocab_path())?;
    save_model(&run.model_path(), &model, &params, &vocab)?;
    let tokens = TokenKind::from(a.tokens).into();
    LmRunConfig::new(
        config,
        serde_json::Value::Null,
        LmRunData {
            tokens,
            encoding: Encoding::UTF_8,
        },
    )
    .save(run)?;
    let last = config
        .last_hidden
        .map(|n| format!(", last layer {n}"))
        .unwrap_or_default();
    println!(
        "imported {} {}×{} (vocabulary {v}, embedding {e}{last}) into {}",
        cell.name(),
        layers,
        h,
        a.out.display()
    );
    Ok(())
}
