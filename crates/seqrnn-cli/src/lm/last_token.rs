//! `seqrnn train --objective last-token` (and `--preset keras`), and `seqrnn eval` of such a
//! run: the Keras tutorials' language model, one predicted word per window.

use anyhow::{bail, ensure, Result};
use clap::{Args, ValueEnum};
use seqrnn::data::TokenKind;
use seqrnn::io::tensors::TensorFile;
use seqrnn::last_token::model::{LastTokenConfig, LastTokenModel};
use seqrnn::last_token::{
    evaluate, EvalWorkspace, LastTokenRunConfig, LastTokenTask, LastTokenTrainConfig, Trained,
    EVAL_BATCH,
};
use seqrnn::lm::LmRunData;
use seqrnn::optim::AdamConfig;
use seqrnn::rnn::CellKind;
use seqrnn::train::{EarlyStopping, FitConfig, KeepCheckpoints, Optimizer};

use super::{EvalArgs, OptimArg, PresetArg, TrainArgs};
use crate::progress::Shown;
use crate::training;

/// What `seqrnn train` optimises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ObjectiveArg {
    /// Truncated BPTT: a prediction at every step of each window, the state carried.
    #[default]
    EveryStep,
    /// The Keras tutorials' formulation: a window of --window words predicts the one word after
    /// it; every position of the stream is an example, shuffled each epoch.
    LastToken,
}

/// The flags of the last-token objective (flattened into `seqrnn train`).
#[derive(Args, Debug)]
pub struct LastTokenArgs {
    /// Training objective (`--preset keras` selects last-token).
    #[arg(long, value_enum, default_value = "every-step")]
    objective: ObjectiveArg,
    /// Words before the predicted one (last-token objective; keras preset: 20).
    #[arg(long, value_name = "N")]
    window: Option<usize>,
    /// Also validate every N training steps (last-token objective).
    #[arg(long, value_name = "N")]
    valid_every: Option<usize>,
}

/// The keras preset: `(window, layers, hidden, dropout, batch, epochs)`.
const KERAS: (usize, usize, usize, f32, usize, usize) = (20, 2, 200, 0.2, 128, 10);

/// Whether `seqrnn train` trains the last-token objective; refuses its flags without it.
pub fn selected(a: &TrainArgs) -> Result<bool> {
    let on = a.last_token.objective == ObjectiveArg::LastToken || a.lm.preset == PresetArg::Keras;
    if !on {
        for (given, flag) in [
            (a.last_token.window.is_some(), "--window"),
            (a.last_token.valid_every.is_some(), "--valid-every"),
        ] {
            ensure!(
                !given,
                "{flag} belongs to the last-token objective: add --objective last-token (or --preset keras)"
            );
        }
    }
    Ok(on)
}

/// Refuses the every-step flags that have no meaning here.
fn refuse_every_step_flags(a: &TrainArgs) -> Result<()> {
    for (given, flag, why) in [
        (a.tie, "--tie", "the output layer has its own weights"),
        (
            a.variational.variational,
            "--variational",
            "dropout is drawn afresh for every value, as Keras' Dropout layers",
        ),
        (
            a.lm.bptt.is_some(),
            "--bptt",
            "the window length is --window",
        ),
        (
            a.lm.init.is_some(),
            "--init",
            "the weights start from Keras' initialisers",
        ),
        (
            a.lm.variable_bptt,
            "--variable-bptt",
            "the window length is --window",
        ),
    ] {
        if given {
            bail!("{flag} does not apply to the last-token objective: {why}");
        }
    }
    for (given, flag) in [
        (a.lm.embed_drop.is_some(), "--embed-drop"),
        (a.lm.weight_drop.is_some(), "--weight-drop"),
        (a.lm.dropout_input.is_some(), "--dropout-input"),
        (a.lm.dropout_hidden.is_some(), "--dropout-hidden"),
        (a.lm.dropout_output.is_some(), "--dropout-output"),
        (a.lm.ar.is_some(), "--ar"),
        (a.lm.tar.is_some(), "--tar"),
        (a.lm.last_hidden.is_some(), "--last-hidden"),
    ] {
        if given {
            bail!(
                "{flag} does not apply to the last-token objective: the AWD-LSTM regularisers belong to the every-step language model"
            );
        }
    }
    Ok(())
}

/// A fresh run's settings: the keras preset, overridden by the flags given.
fn fresh_settings(a: &TrainArgs, vocab: usize) -> Result<(LastTokenConfig, LastTokenTrainConfig)> {
    let (window, layers, hidden, dropout, batch, epochs) = KERAS;
    let hidden = a.hidden.unwrap_or(hidden);
    let model = LastTokenConfig {
        vocab,
        embed: a.lm.embed.unwrap_or(hidden),
        cell: CellKind::from(a.cell),
        hidden,
        layers: a.lm.layers.unwrap_or(layers),
        dropout: a.lm.dropout.unwrap_or(dropout),
    };
    let optim = a.lm.optim.unwrap_or(OptimArg::Adam);
    let fit = FitConfig {
        lr: a.lm.lr.unwrap_or(match optim {
            OptimArg::Adam => 1e-3,
            OptimArg::Sgd => 1.0,
        }),
        lr_decay: a.lm.lr_decay.unwrap_or(1.0),
        decay_after: a.lm.decay_after.unwrap_or(1),
        optimizer: match optim {
            OptimArg::Adam => Optimizer::Adam(AdamConfig::default()),
            OptimArg::Sgd => Optimizer::Sgd,
        },
        clip: a.lm.clip,
        epochs: a.lm.epochs.unwrap_or(epochs),
        early_stopping: EarlyStopping::Off,
        max_steps: a.run.max_steps,
        seed: a.lm.seed,
        valid_every: a.last_token.valid_every,
        ema: None,
        checkpoint_every: a.run.checkpoint_every(None),
        keep: a.run.keep(KeepCheckpoints::Latest),
        weight_decay: a.lm.weight_decay.unwrap_or(0.0),
        asgd: a.lm.asgd.then_some(seqrnn::train::NtAsgd {
            nonmono: a.lm.nonmono,
        }),
    };
    let train = LastTokenTrainConfig {
        window: a.last_token.window.unwrap_or(window),
        batch: a.lm.batch.unwrap_or(batch),
        eval_batch: a.lm.eval_batch.unwrap_or(EVAL_BATCH),
        threads: seqrnn::linalg::threads(),
        fit,
    };
    Ok((model, train))
}

/// A resumed run's settings: its own, with a new epoch count, step limit, checkpointing and
/// validation interval when given.
fn resumed_settings(
    a: &TrainArgs,
    c: &LastTokenRunConfig,
) -> Result<(LastTokenConfig, LastTokenTrainConfig)> {
    ensure!(
        a.last_token.window.is_none_or(|w| w == c.train.window),
        "the run was trained with --window {}: a resumed run keeps its window",
        c.train.window
    );
    let mut t = c.train;
    t.fit.epochs = a.lm.epochs.unwrap_or(t.fit.epochs);
    t.fit.max_steps = a.run.max_steps;
    t.fit.checkpoint_every = a.run.checkpoint_every(t.fit.checkpoint_every);
    t.fit.valid_every = a.last_token.valid_every.or(t.fit.valid_every);
    t.fit.keep = a.run.keep(t.fit.keep);
    super::warn_threads(t.threads);
    Ok((c.model, t))
}

/// `seqrnn train --objective last-token`.
pub fn train_cmd(a: TrainArgs) -> Result<()> {
    crate::set_threads(a.run.threads)?;
    refuse_every_step_flags(&a)?;
    ensure!(
        a.last_token.valid_every != Some(0),
        "--valid-every must be at least 1"
    );
    let data_path = super::data_path(a.data.as_deref(), a.lm.tokens())?;
    let resumed = training::resumed::<_, _, _>(&a.run)?;
    let saved: Option<&LastTokenRunConfig> = resumed.as_ref().map(|(_, c)| c);
    let encoding = match saved {
        Some(c) => a.lm.encoding.or_run(c.data.encoding),
        None => a.lm.encoding.get(),
    };
    let corpus = super::train_corpus(&a, &data_path, encoding)?;
    let (model_cfg, train_cfg) = match saved {
        Some(c) => resumed_settings(&a, c)?,
        None => fresh_settings(&a, corpus.vocab.len())?,
    };
    let model = LastTokenModel::new(model_cfg)?;
    train_cfg.fit.validate()?;
    let (window, batch, eval_batch) = (train_cfg.window, train_cfg.batch, train_cfg.eval_batch);
    let (train, valid) = (&corpus.train, &corpus.valid);
    let mut task = LastTokenTask::new(&model, train, valid, window, batch, eval_batch)?;
    if let Some(test) = &corpus.test {
        ensure!(
            test.len() >= 2,
            "the test split needs at least 2 tokens, it has {}",
            test.len()
        );
    }
    let mut params = match (&resumed, &a.init_from) {
        (None, Some(path)) => {
            model
                .param_layout()
                .from_file(&TensorFile::load(path)?, path, "a last-token model")?
        }
        _ => model.init_params(train_cfg.fit.seed)?,
    };
    let tokens = TokenKind::from(a.lm.tokens()).into();
    let config = LastTokenRunConfig::new(model_cfg, train_cfg, LmRunData { tokens, encoding });
    let run = super::open_run(resumed.map(|(r, _)| r), &a, &config, &corpus, &data_path)?;
    if training::is_root() {
        print_start(&model, &train_cfg, corpus.train.len());
    }
    let t0 = std::time::Instant::now();
    let fit = &train_cfg.fit;
    let outcome = training::fit(&mut task, &mut params, fit, &run, Shown::Perplexity)?;
    if !run.is_writer() {
        return Ok(());
    }
    let best_valid_ppl = -outcome.best_score;
    let test_ppl = match &corpus.test {
        Some(test) => {
            let mut ws = EvalWorkspace::default();
            let best = &outcome.best_params;
            Some(evaluate(&model, best, test, window, eval_batch, &mut ws)?.ppl)
        }
        None => None,
    };
    let secs = t0.elapsed().as_secs_f64();
    super::write_summary(&run, best_valid_ppl, test_ppl, &outcome, secs)?;
    let epochs = outcome.epochs.iter().filter(|r| r.epoch_end).count();
    let ppl = (best_valid_ppl, test_ppl);
    super::print_result(&a, ppl, epochs, outcome.steps, secs);
    Ok(())
}

/// The line on standard error that says what is trained on what.
fn print_start(model: &LastTokenModel, t: &LastTokenTrainConfig, train_tokens: usize) {
    let c = model.config();
    eprintln!(
        "{} {}×{} last-token (window {}): {} parameters, vocabulary {}, {} training windows, batch {}, {} thread(s)",
        c.cell.name().to_uppercase(),
        c.layers,
        c.hidden,
        t.window,
        model.num_params(),
        c.vocab,
        train_tokens - t.window,
        t.batch,
        seqrnn::linalg::threads()
    );
}

/// `seqrnn eval` of a last-token run.
pub fn eval_cmd(a: EvalArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    ensure!(a.batch >= 1, "--batch must be at least 1");
    let lm = Trained::load(&a.model)?;
    let encoding = a.encoding.or_run(lm.encoding());
    let (stream, key) = super::eval_split(&a, lm.token_kind(), |d, s| lm.split(d, s, encoding))?;
    let window = lm.config.train.window;
    let batch = match a.batch {
        1 => lm.config.train.eval_batch,
        n => n,
    };
    let mut ws = EvalWorkspace::default();
    let r = evaluate(&lm.model, &lm.params, &stream, window, batch, &mut ws)?;
    let how = format!("each from the {window} before it");
    super::print_eval(&a, key, &r, &how);
    Ok(())
}
