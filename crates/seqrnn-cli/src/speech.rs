//! `seqrnn speech train | eval | transcribe`: from WAV files to text with a CTC-trained
//! bidirectional LSTM/GRU.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use clap::{Args, Subcommand};
use seqrnn::data::audio::{FeatureConfig, SpecAugment};
use seqrnn::optim::AdamConfig;
use seqrnn::rnn::CellKind;
use seqrnn::speech::data::{load_named, Concat, FsddSplit, Utterance};
use seqrnn::speech::model::{SpeechConfig, SpeechModel};
use seqrnn::speech::{
    evaluate, prepare, transcribe, words_of, Alphabet, Decoding, Reader, SpeechData,
    SpeechRunConfig, SpeechRunData, SpeechScores, SpeechSource, SpeechTask, SpeechTrainConfig,
    Trained, TEST_SEED, VALID_SEED,
};
use seqrnn::train::{EarlyStopping, FitConfig, KeepCheckpoints, Optimizer};

use crate::progress::Shown;
use crate::training::{self, new_run, resumed_run};
use crate::CellArg;

#[derive(Subcommand, Debug)]
pub enum SpeechCommand {
    /// Train a CTC acoustic model on FSDD or on manifests, selecting on validation WER.
    Train(Box<TrainArgs>),
    /// Word and character error rates and utterance accuracy of a trained model.
    Eval(EvalArgs),
    /// Transcribe WAV files (or the recordings of a manifest): one `path<TAB>transcript` line
    /// per file.
    Transcribe(TranscribeArgs),
}

pub fn run(cmd: SpeechCommand) -> Result<()> {
    match cmd {
        SpeechCommand::Train(a) => train_cmd(*a),
        SpeechCommand::Eval(a) => eval_cmd(a),
        SpeechCommand::Transcribe(a) => transcribe_cmd(a),
    }
}

/// Where the recordings come from.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// FSDD's `recordings/` folder ({digit}_{speaker}_{take}.wav; takes 0–4 are the test set,
    /// 5–9 validation, the rest training).
    #[arg(long, conflicts_with_all = ["train", "valid", "test"])]
    fsdd: Option<PathBuf>,
    /// Training manifest (TSV: path<TAB>transcript, paths relative to the manifest).
    #[arg(long, requires = "valid")]
    train: Option<PathBuf>,
    /// Validation manifest (selects the weights).
    #[arg(long, requires = "train")]
    valid: Option<PathBuf>,
    /// Test manifest (scored at the end).
    #[arg(long)]
    test: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Connected utterances of K1 to K2 recordings of one speaker joined with short pauses
    /// (e.g. 2-7), for training, validation and test.
    #[arg(long)]
    concat: Option<String>,
    /// Run directory.
    #[arg(long)]
    out: PathBuf,
    /// Sample rate of the model's features (recordings are resampled to it).
    #[arg(long, default_value_t = 8000)]
    rate: u32,
    /// Mel bands.
    #[arg(long, default_value_t = 40)]
    mels: usize,
    /// Frames stacked into one recurrent step (and the step subsampling).
    #[arg(long, default_value_t = 2)]
    stack: usize,
    /// Recurrent cell.
    #[arg(long, value_enum, default_value = "lstm")]
    cell: CellArg,
    /// Units per direction.
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Bidirectional layers.
    #[arg(long, default_value_t = 2)]
    layers: usize,
    /// Dropout on the encoder's input and output.
    #[arg(long, default_value_t = 0.3)]
    dropout: f32,
    /// Speed perturbation: also train on copies of every training recording played this many
    /// times as fast (e.g. 0.9,1.1).
    #[arg(long, value_delimiter = ',')]
    speed: Vec<f32>,
    /// SpecAugment: frequency masks per utterance (0 with --time-masks 0: none).
    #[arg(long, default_value_t = 2)]
    freq_masks: usize,
    /// SpecAugment: widest frequency mask, in mel bands.
    #[arg(long, default_value_t = 5)]
    freq_width: usize,
    /// SpecAugment: time masks per utterance.
    #[arg(long, default_value_t = 2)]
    time_masks: usize,
    /// SpecAugment: widest time mask, in frames.
    #[arg(long, default_value_t = 4)]
    time_width: usize,
    /// Decoding of the final scores, eval and transcribe: 1 for greedy, more for a CTC prefix
    /// beam search of this width.
    #[arg(long, default_value_t = 1)]
    beam: usize,
    /// Decode with a beam search (of --beam, at least 2 wide) that writes only words of the
    /// training transcripts.
    #[arg(long)]
    lexicon: bool,
    /// Epochs at most [default: 30].
    #[arg(long)]
    epochs: Option<usize>,
    /// Stop after this many epochs without a better validation WER.
    #[arg(long, default_value_t = 6)]
    patience: usize,
    /// Utterances per step.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Learning rate factor per epoch after --decay-after epochs.
    #[arg(long, default_value_t = 1.0)]
    lr_decay: f64,
    /// Epochs at the initial learning rate.
    #[arg(long, default_value_t = 1)]
    decay_after: usize,
    /// Maximum global gradient norm.
    #[arg(long, default_value_t = 5.0)]
    clip: f64,
    /// Validate and keep an exponential moving average of the weights with this momentum; 0
    /// for the raw weights.
    #[arg(long, default_value_t = 0.999)]
    ema: f64,
    /// Also write a checkpoint every this many steps (0: at epoch ends only).
    #[arg(long, default_value_t = 0)]
    checkpoint_every: u64,
    /// Stop after this many steps (smoke tests).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Seed of initialisation, shuffling, dropout, masks and connected utterances.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Replace a run already in --out.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Go on with the run in --out from its last checkpoint, with the run's own settings; only
    /// --epochs may raise the number of epochs.
    #[arg(long)]
    resume: bool,
    /// Print one JSON object with the final figures.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run directory.
    #[arg(long)]
    model: PathBuf,
    /// FSDD's `recordings/` folder (its test takes are scored).
    #[arg(long, conflicts_with = "test")]
    fsdd: Option<PathBuf>,
    /// Test manifest.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Connected utterances (K1-K2) [default: the run's].
    #[arg(long)]
    concat: Option<String>,
    /// Decoding: 1 greedy, more a prefix beam search [default: the run's].
    #[arg(long)]
    beam: Option<usize>,
    /// Decoding: a beam search that writes only words of the training transcripts [default:
    /// the run's].
    #[arg(long)]
    lexicon: bool,
    /// Write every `source<TAB>reference<TAB>hypothesis` line to this file.
    #[arg(long)]
    hyp_out: Option<PathBuf>,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct TranscribeArgs {
    /// Run directory.
    #[arg(long)]
    model: PathBuf,
    /// WAV files, or manifests (`.tsv`) whose recordings are transcribed.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Draw each file's per-frame character probabilities over its log-mel spectrogram as
    /// `NAME.png` in this folder.
    #[arg(long)]
    align_out: Option<PathBuf>,
    /// Decoding: 1 greedy, more a prefix beam search [default: the run's].
    #[arg(long)]
    beam: Option<usize>,
    /// Decoding: a beam search that writes only words of the training transcripts [default:
    /// the run's].
    #[arg(long)]
    lexicon: bool,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn decoding(beam: usize, lexicon: bool) -> Result<Decoding> {
    ensure!(
        beam >= 1,
        "--beam must be at least 1 (1 is greedy decoding)"
    );
    Ok(match (beam, lexicon) {
        (w, true) => Decoding::Lexicon(w.max(2)),
        (1, false) => Decoding::Greedy,
        (w, false) => Decoding::Beam(w),
    })
}

fn load_part(
    source: &SpeechSource,
    part: FsddSplit,
    rate: u32,
    concat: Option<&Concat>,
    speeds: &[f32],
    seed: u64,
) -> Result<Option<Vec<Utterance>>> {
    Ok(source.load(part, rate, concat, speeds, seed)?)
}

fn source_of(d: &DataArgs) -> Result<SpeechSource> {
    Ok(match (&d.fsdd, &d.train, &d.valid) {
        (Some(dir), _, _) => SpeechSource::Fsdd(dir.clone()),
        (None, Some(train), Some(valid)) => SpeechSource::Manifests {
            train: train.clone(),
            valid: valid.clone(),
            test: d.test.clone(),
        },
        _ => bail!("give the recordings: --fsdd DIR, or --train and --valid manifests"),
    })
}

fn settings(
    a: &TrainArgs,
    source: SpeechSource,
    labels: usize,
) -> Result<(SpeechConfig, FeatureConfig, SpeechTrainConfig)> {
    let features = FeatureConfig {
        sample_rate: a.rate,
        n_mels: a.mels,
        ..FeatureConfig::default()
    };
    let model = SpeechConfig {
        features: a.mels,
        stack: a.stack,
        cell: CellKind::from(a.cell),
        hidden: a.hidden,
        layers: a.layers,
        dropout: a.dropout,
        labels,
    };
    let augment = (a.freq_masks + a.time_masks > 0).then_some(SpecAugment {
        freq_masks: a.freq_masks,
        freq_width: a.freq_width,
        time_masks: a.time_masks,
        time_width: a.time_width,
        ..SpecAugment::default()
    });
    let concat = match &a.concat {
        Some(c) => Some(Concat::parse(c)?),
        None => None,
    };
    let train = SpeechTrainConfig {
        batch: a.batch,
        source,
        concat,
        speeds: a.speed.clone(),
        augment,
        decoding: decoding(a.beam, a.lexicon)?,
        fit: FitConfig {
            lr: a.lr,
            lr_decay: a.lr_decay,
            decay_after: a.decay_after,
            clip: Some(a.clip),
            epochs: a.epochs.unwrap_or(30),
            early_stopping: EarlyStopping::Patience(a.patience),
            max_steps: a.max_steps,
            seed: a.seed,
            valid_every: None,
            ema: (a.ema != 0.0).then_some(a.ema),
            checkpoint_every: (a.checkpoint_every > 0).then_some(a.checkpoint_every),
            keep: KeepCheckpoints::default(),
            weight_decay: 0.0,
            asgd: None,
            optimizer: Optimizer::Adam(AdamConfig::default()),
        },
    };
    Ok((model, features, train))
}

fn train_cmd(a: TrainArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let resumed = resumed_run(&a.out, a.resume, a.force)?;
    let saved = match &resumed {
        Some(run) => Some(SpeechRunConfig::load(run.dir())?),
        None => None,
    };
    let source = match &saved {
        Some(c) => c.train.source.clone(),
        None => source_of(&a.data)?,
    };
    let concat = match &saved {
        Some(c) => c.train.concat,
        None => a.concat.as_deref().map(Concat::parse).transpose()?,
    };
    let (rate, seed) = match &saved {
        Some(c) => (c.features.sample_rate, c.train.fit.seed),
        None => (a.rate, a.seed),
    };
    let t_load = std::time::Instant::now();
    let speeds = match &saved {
        Some(c) => c.train.speeds.clone(),
        None => a.speed.clone(),
    };
    let part = |p, sp: &[f32], s| load_part(&source, p, rate, concat.as_ref(), sp, s);
    let train_u =
        part(FsddSplit::Train, &speeds, seed.wrapping_add(0x5eed_0001))?.unwrap_or_default();
    let valid_u = part(FsddSplit::Valid, &[], VALID_SEED)?.unwrap_or_default();
    let test_u = part(FsddSplit::Test, &[], TEST_SEED)?;
    let (model_cfg, feat_cfg, mut train_cfg, alphabet) = match &saved {
        Some(c) => (
            c.model,
            c.features,
            c.train.clone(),
            Alphabet::from_chars(&c.alphabet),
        ),
        None => {
            let alphabet =
                Alphabet::from_transcripts(train_u.iter().map(|u| u.transcript.as_str()));
            let (m, f, t) = settings(&a, source.clone(), alphabet.labels())?;
            (m, f, t, alphabet)
        }
    };
    train_cfg.fit.epochs = a.epochs.unwrap_or(train_cfg.fit.epochs);
    ensure!(train_cfg.batch >= 1, "--batch must be at least 1");
    let model = SpeechModel::new(model_cfg)?;
    train_cfg.fit.validate()?;
    if let Some(s) = &train_cfg.augment {
        s.validate()?;
    }
    let train = prepare(&train_u, &feat_cfg, &alphabet, &model_cfg)?;
    let valid = prepare(&valid_u, &feat_cfg, &alphabet, &model_cfg)?;
    let test = match &test_u {
        Some(t) => Some(prepare(t, &feat_cfg, &alphabet, &model_cfg)?),
        None => None,
    };
    let load_secs = t_load.elapsed().as_secs_f64();
    let mut task = SpeechTask::new(
        &model,
        &train,
        &valid,
        &alphabet,
        train_cfg.batch,
        train_cfg.augment,
    )?;
    let mut params = model.init_params(train_cfg.fit.seed)?;
    let data = SpeechRunData {
        features: feat_cfg,
        alphabet: alphabet.chars(),
    };
    let config = SpeechRunConfig::new(model_cfg, train_cfg.clone(), data);
    let hop = feat_cfg.hop_ms;
    if training::is_root() {
        eprintln!(
            "CTC {}, {} parameters, {} labels ({:?} and the blank); {} train / {} valid utterances ({:.0} / {:.0} s of audio, read in {load_secs:.1} s), {} thread(s)",
            model_cfg.cell.name().to_uppercase(),
            model.num_params(),
            alphabet.labels(),
            alphabet.chars(),
            train.len(),
            valid.len(),
            train.seconds(hop),
            valid.seconds(hop),
            seqrnn::linalg::threads()
        );
    }
    let run = match resumed {
        Some(mut run) => {
            run.set_config(&config)?;
            run
        }
        None => {
            let run = new_run(&a.out, a.force, &config)?;
            if run.is_writer() {
                let words = words_of(train.transcripts.iter().map(String::as_str));
                let mut text = words.join("\n");
                text.push('\n');
                run.write(&SpeechRunConfig::words_path(run.dir()), text.as_bytes())?;
            }
            run
        }
    };
    let t0 = std::time::Instant::now();
    let outcome = training::fit(&mut task, &mut params, &train_cfg.fit, &run, Shown::Wer)?;
    if !run.is_writer() {
        return Ok(());
    }
    let secs = t0.elapsed().as_secs_f64();
    let best = &outcome.best_params;
    let lexicon = alphabet.lexicon(&words_of(train.transcripts.iter().map(String::as_str)));
    let reader = Reader {
        alphabet: &alphabet,
        decoding: train_cfg.decoding,
        lexicon: Some(&lexicon),
    };
    let v = evaluate(&model, best, &valid, &reader)?;
    let t = match &test {
        Some(d) => Some(evaluate(&model, best, d, &reader)?),
        None => None,
    };
    let json = serde_json::json!({
        "valid_accuracy": v.accuracy,
        "valid_wer": v.wer,
        "valid_cer": v.cer,
        "test_accuracy": t.as_ref().map(|s| s.accuracy),
        "test_wer": t.as_ref().map(|s| s.wer),
        "test_cer": t.as_ref().map(|s| s.cer),
        "test_utterances": t.as_ref().map(|s| s.utterances),
        "best_epoch": outcome.best_epoch,
        "epochs": outcome.epochs_run,
        "steps": outcome.steps,
        "seconds": secs,
        "run": a.out,
    });
    run.finish(&json)?;
    if a.json {
        println!("{json}");
    } else {
        let mut line = format!("valid {}", scores_text(&v));
        if let Some(s) = &t {
            line.push_str(&format!("; test {}", scores_text(s)));
        }
        println!(
            "{line}; best epoch {}, {} epochs, {secs:.0} s; run in {}",
            outcome.best_epoch,
            outcome.epochs_run,
            a.out.display()
        );
    }
    Ok(())
}

fn scores_text(s: &SpeechScores) -> String {
    format!(
        "accuracy {:.2}%, WER {:.2}%, CER {:.2}% ({} utterances)",
        100.0 * s.accuracy,
        100.0 * s.wer,
        100.0 * s.cer,
        s.utterances
    )
}

fn load_trained(dir: &Path, beam: Option<usize>, lexicon: bool) -> Result<Trained> {
    let mut m = Trained::load(dir)
        .with_context(|| format!("{} is not a usable speech run", dir.display()))?;
    if beam.is_some() || lexicon {
        m.config.train.decoding = decoding(beam.unwrap_or(8), lexicon)?;
    }
    Ok(m)
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let m = load_trained(&a.model, a.beam, a.lexicon)?;
    let rate = m.config.features.sample_rate;
    let concat = match &a.concat {
        Some(c) => Some(Concat::parse(c)?),
        None => m.config.train.concat,
    };
    let source = match (&a.fsdd, &a.test) {
        (Some(dir), _) => SpeechSource::Fsdd(dir.clone()),
        (None, Some(t)) => SpeechSource::Manifests {
            train: t.clone(),
            valid: t.clone(),
            test: Some(t.clone()),
        },
        _ => bail!("give the test recordings: --fsdd DIR or --test MANIFEST"),
    };
    let utts = load_part(
        &source,
        FsddSplit::Test,
        rate,
        concat.as_ref(),
        &[],
        TEST_SEED,
    )?
    .unwrap_or_default();
    let t_feat = std::time::Instant::now();
    let data = m.prepare(&utts)?;
    let feat_secs = t_feat.elapsed().as_secs_f64();
    let t0 = std::time::Instant::now();
    let s = m.evaluate(&data)?;
    let secs = t0.elapsed().as_secs_f64();
    let audio = utts.iter().map(|u| u.samples.len()).sum::<usize>() as f64 / rate as f64;
    if let Some(path) = &a.hyp_out {
        let mut text = String::new();
        for ((src, r), h) in data
            .sources
            .iter()
            .zip(&data.transcripts)
            .zip(&s.hypotheses)
        {
            text.push_str(&format!("{src}\t{r}\t{h}\n"));
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "test_accuracy": s.accuracy,
                "test_wer": s.wer,
                "test_cer": s.cer,
                "test_loss": s.loss,
                "utterances": s.utterances,
                "audio_seconds": audio,
                "feature_seconds": feat_secs,
                "seconds": secs,
                "threads": seqrnn::linalg::threads(),
            })
        );
    } else {
        println!(
            "{}; {audio:.0} s of audio: features in {feat_secs:.2} s ({:.0}× real time), \
             transcribed in {secs:.2} s ({:.0}× real time)",
            scores_text(&s),
            audio / feat_secs.max(1e-9),
            audio / secs.max(1e-9)
        );
    }
    Ok(())
}

fn transcribe_cmd(a: TranscribeArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let m = load_trained(&a.model, a.beam, a.lexicon)?;
    let utts = load_named(&a.files, m.config.features.sample_rate)?;
    // Transcripts are not known: featurise with empty ones (every recording is long enough).
    let data: SpeechData = m.prepare(&utts)?;
    let (hyps, _) = transcribe(&m.model, &m.params, &data, &m.reader(), false)?;
    for (src, h) in data.sources.iter().zip(&hyps) {
        println!("{src}\t{h}");
    }
    if let Some(dir) = &a.align_out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (i, hyp) in hyps.iter().enumerate() {
            let name = Path::new(&data.sources[i]).file_stem().map_or_else(
                || format!("utterance-{i}"),
                |s| s.to_string_lossy().into_owned(),
            );
            let path = dir.join(format!("{name}.png"));
            seqrnn::speech::alignment_picture(&m, &data, i, hyp, &path)?;
        }
    }
    Ok(())
}
