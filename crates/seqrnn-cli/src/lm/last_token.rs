//! `seqrnn train --objective last-token` (and `--preset keras`), and `seqrnn eval` of such a
//! run: the Keras tutorials' language model, one predicted word per window.

use anyhow::{bail, ensure, Context, Result};
use clap::{Args, ValueEnum};
use seqrnn::data::{TokenKind, Vocab};
use seqrnn::last_token::model::{LastTokenConfig, LastTokenModel};
use seqrnn::last_token::{
    evaluate, EvalWorkspace, LastTokenRunConfig, LastTokenTask, LastTokenTrainConfig, Trained,
    EVAL_BATCH,
};
use seqrnn::lm::Split;
use seqrnn::optim::AdamConfig;
use seqrnn::rnn::CellKind;
use seqrnn::lm::LmRunData;
use seqrnn::train::{EarlyStopping, FitConfig, KeepCheckpoints, Optimizer};

use super::{default_data, load_corpus, EvalArgs, OptimArg, PresetArg, SplitArg, TrainArgs};
use crate::progress::Shown;
use crate::training::{self, new_run, resumed_run};

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
            a.variational,
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
            a.init_from.is_some(),
            "--init-from",
            "it reads language-model weights only",
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
        max_steps: a.max_steps,
        seed: a.lm.seed,
        valid_every: a.last_token.valid_every,
        ema: None,
        checkpoint_every: a.checkpoint_every,
        keep: keep(a),
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

fn keep(a: &TrainArgs) -> KeepCheckpoints {
    match a.keep_epoch_checkpoints {
        true => KeepCheckpoints::Epochs,
        false => KeepCheckpoints::Latest,
    }
}

/// `seqrnn train --objective last-token`.
pub fn train_cmd(a: TrainArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    refuse_every_step_flags(&a)?;
    ensure!(
        a.last_token.valid_every != Some(0),
        "--valid-every must be at least 1"
    );
    let data_path = match &a.data {
        Some(p) => p.clone(),
        None => default_data(a.lm.tokens())?,
    };
    let resumed = resumed_run(&a.out, a.resume, a.force)?;
    let saved = match &resumed {
        Some(run) => Some(LastTokenRunConfig::load(run.dir())?),
        None => None,
    };
    let corpus = load_corpus(&data_path, a.lm.tokens())
        .with_context(|| format!("could not load the corpus from {}", data_path.display()))?;
    let (model_cfg, train_cfg) = match &saved {
        Some(c) => {
            ensure!(
                a.last_token.window.is_none_or(|w| w == c.train.window),
                "the run was trained with --window {}: a resumed run keeps its window",
                c.train.window
            );
            let mut t = c.train;
            t.fit.epochs = a.lm.epochs.unwrap_or(t.fit.epochs);
            t.fit.max_steps = a.max_steps;
            t.fit.checkpoint_every = a.checkpoint_every.or(t.fit.checkpoint_every);
            t.fit.valid_every = a.last_token.valid_every.or(t.fit.valid_every);
            if a.keep_epoch_checkpoints {
                t.fit.keep = KeepCheckpoints::Epochs;
            }
            if t.threads != 0 && t.threads != seqrnn::linalg::threads() {
                eprintln!(
                    "warning: the run was trained with {} thread(s) and resumes with {}: the result will differ in the last bits from an uninterrupted run (pass --threads {} to reproduce it exactly)",
                    t.threads,
                    seqrnn::linalg::threads(),
                    t.threads
                );
            }
            (c.model, t)
        }
        None => fresh_settings(&a, corpus.vocab.len())?,
    };
    let model = LastTokenModel::new(model_cfg)?;
    train_cfg.fit.validate()?;
    let mut task = LastTokenTask::new(
        &model,
        &corpus.train,
        &corpus.valid,
        train_cfg.window,
        train_cfg.batch,
        train_cfg.eval_batch,
    )?;
    if let Some(test) = &corpus.test {
        ensure!(
            test.len() >= 2,
            "the test split needs at least 2 tokens, it has {}",
            test.len()
        );
    }
    let mut params = model.init_params(train_cfg.fit.seed)?;
    let tokens = TokenKind::from(a.lm.tokens()).into();
    let config = LastTokenRunConfig::new(model_cfg, train_cfg, LmRunData { tokens });
    let run = match resumed {
        Some(mut run) => {
            let vocab = Vocab::load(&run.dir().vocab_path())?;
            ensure!(
                vocab == corpus.vocab,
                "the corpus at {} gives a different vocabulary from the run's vocab.txt: resume with the corpus the run was trained on",
                data_path.display()
            );
            run.set_config(&config)?;
            run
        }
        None => {
            let run = new_run(&a.out, a.force, &config)?;
            if run.is_writer() {
                corpus.vocab.save(&run.dir().vocab_path())?;
            }
            run
        }
    };
    if training::is_root() {
        eprintln!(
            "{} {}×{} last-token (window {}): {} parameters, vocabulary {}, {} training windows, batch {}, {} thread(s)",
            model_cfg.cell.name().to_uppercase(),
            model_cfg.layers,
            model_cfg.hidden,
            train_cfg.window,
            model.num_params(),
            model_cfg.vocab,
            corpus.train.len() - train_cfg.window,
            train_cfg.batch,
            seqrnn::linalg::threads()
        );
    }
    let t0 = std::time::Instant::now();
    let outcome = training::fit(
        &mut task,
        &mut params,
        &train_cfg.fit,
        &run,
        Shown::Perplexity,
    )?;
    if !run.is_writer() {
        return Ok(());
    }
    let best_valid_ppl = -outcome.best_score;
    let test_ppl = match &corpus.test {
        Some(test) => Some(
            evaluate(
                &model,
                &outcome.best_params,
                test,
                train_cfg.window,
                train_cfg.eval_batch,
                &mut EvalWorkspace::default(),
            )?
            .ppl,
        ),
        None => None,
    };
    let secs = t0.elapsed().as_secs_f64();
    super::write_summary(&run, best_valid_ppl, test_ppl, &outcome, secs)?;
    let epochs = outcome.epochs.iter().filter(|r| r.epoch_end).count();
    if a.json {
        let v = serde_json::json!({
            "valid_ppl": best_valid_ppl,
            "test_ppl": test_ppl,
            "epochs": epochs,
            "steps": outcome.steps,
            "seconds": secs,
            "run": a.out,
        });
        println!("{v}");
    } else {
        println!(
            "best validation perplexity {best_valid_ppl:.2}{}; {epochs} epochs, {} steps, {secs:.0} s; run in {}",
            test_ppl
                .map(|p| format!(", test perplexity {p:.2} (best-on-validation weights)"))
                .unwrap_or_default(),
            outcome.steps,
            a.out.display()
        );
    }
    Ok(())
}

/// `seqrnn eval` of a last-token run.
pub fn eval_cmd(a: EvalArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    ensure!(a.batch >= 1, "--batch must be at least 1");
    let lm = Trained::load(&a.model)?;
    let data_path = match &a.data {
        Some(p) => p.clone(),
        None => default_data(match lm.token_kind() {
            TokenKind::Word => super::TokensArg::Word,
            TokenKind::Char => super::TokensArg::Char,
        })?,
    };
    let (split, key) = match a.split {
        SplitArg::Valid => (Split::Valid, "valid"),
        SplitArg::Test => (Split::Test, "test"),
    };
    let (stream, unknown) = lm.split(&data_path, split)?;
    if unknown > 0 {
        eprintln!(
            "note: {unknown} tokens of the {key} split are not in the vocabulary and count as <unk>"
        );
    }
    let window = lm.config.train.window;
    let batch = match a.batch {
        1 => lm.config.train.eval_batch,
        n => n,
    };
    let r = evaluate(
        &lm.model,
        &lm.params,
        &stream,
        window,
        batch,
        &mut EvalWorkspace::default(),
    )?;
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
            "perplexity {:.2} (cross-entropy {:.4} nats/token) over {} tokens, each from the {window} before it, {:.0} tokens/s",
            r.ppl, r.loss, r.tokens, r.tokens_per_s
        );
    }
    Ok(())
}

/// Refuses `seqrnn generate` with a last-token run (it is not implemented for them).
pub fn refuse_generate(model: &std::path::Path) -> Result<()> {
    ensure!(
        !LastTokenRunConfig::is_run(model),
        "{} is a last-token run: seqrnn generate reads every-step language-model runs only (seqrnn eval scores it)",
        model.display()
    );
    Ok(())
}
