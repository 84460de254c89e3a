//! `seqrnn speech train | eval | transcribe`: from WAV files to text with a CTC-trained
//! bidirectional LSTM/GRU.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use clap::{Args, Subcommand};
use seqrnn::data::audio::{FeatureConfig, SpecAugment};
use seqrnn::run::Run;
use seqrnn::speech::data::{load_named, Concat, FsddSplit, Utterance};
use seqrnn::speech::model::{SpeechConfig, SpeechModel};
use seqrnn::speech::words::WordHead;
use seqrnn::speech::{
    evaluate, prepare, words_of, Alphabet, Decoding, Ensemble, Reader, SpeechData, SpeechRunConfig,
    SpeechRunData, SpeechScores, SpeechSource, SpeechTask, SpeechTrainConfig, Trained, TEST_SEED,
    VALID_SEED,
};
use seqrnn::train::FitOutcome;

use crate::flags::{default, epochs, EncoderFlags, EncodingFlag, LoopFlags, RunFlags};
use crate::progress::Shown;
use crate::training;

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
    /// With --fsdd: hold this speaker out (all of their recordings are the test set; the
    /// other speakers' takes 0–4 validate and the rest train).
    #[arg(long, requires = "fsdd")]
    fsdd_test_speaker: Option<String>,
    /// Training manifest (TSV: path<TAB>transcript, paths relative to the manifest).
    #[arg(long, requires = "valid")]
    train: Option<PathBuf>,
    /// Validation manifest (selects the weights).
    #[arg(long, requires = "train")]
    valid: Option<PathBuf>,
    /// Test manifest (scored at the end).
    #[arg(long)]
    test: Option<PathBuf>,
    #[command(flatten)]
    encoding: EncodingFlag,
}

/// `seqrnn speech train`'s epochs when --epochs is not given.
const EPOCHS: usize = 30;

/// `seqrnn speech train`.
#[derive(Args, Debug)]
#[command(
    mut_arg("epochs", epochs(EPOCHS)),
    mut_arg("patience", default("6")),
    mut_arg("batch", default("16")),
    mut_arg("lr", default("0.003")),
    mut_arg("ema", default("0.999")),
    mut_arg("layers", default("2"))
)]
pub struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Connected utterances of K1 to K2 recordings of one speaker joined with short pauses
    /// (e.g. 2-7), for training, validation and test.
    #[arg(long)]
    concat: Option<String>,
    #[command(flatten)]
    run: RunFlags,
    /// Sample rate of the model's features (recordings are resampled to it).
    #[arg(long, default_value_t = 8000)]
    rate: u32,
    /// Mel bands.
    #[arg(long, default_value_t = 40)]
    mels: usize,
    /// Time derivatives appended to each frame: 0 none, 1 deltas, 2 deltas and delta-deltas.
    #[arg(long, default_value_t = 0)]
    deltas: usize,
    /// Frames stacked into one recurrent step (and the step subsampling).
    #[arg(long, default_value_t = 2)]
    stack: usize,
    #[command(flatten)]
    encoder: EncoderFlags,
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
    /// Isolated words: a whole-utterance word classifier (attention pooling of the encoder)
    /// trained beside CTC, its cross-entropy weighted by this; validation and decoding then
    /// read it (--beam or --lexicon at eval decode with CTC). 0: none.
    #[arg(long, default_value_t = 0.0)]
    word_head: f32,
    #[command(flatten)]
    fit: LoopFlags,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Run directory; repeated, models with word heads transcribe as one (their word
    /// log-probabilities averaged).
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// FSDD's `recordings/` folder (its test takes are scored).
    #[arg(long, conflicts_with = "test")]
    fsdd: Option<PathBuf>,
    /// With --fsdd: score every recording of this speaker [default: the run's held-out
    /// speaker, if any].
    #[arg(long, requires = "fsdd")]
    fsdd_test_speaker: Option<String>,
    /// Test manifest.
    #[arg(long)]
    test: Option<PathBuf>,
    #[command(flatten)]
    encoding: EncodingFlag,
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
    /// Run directory; repeated, models with word heads transcribe as one (their word
    /// log-probabilities averaged; --align-out draws the first).
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// WAV files, or manifests (`.tsv`) whose recordings are transcribed.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    encoding: EncodingFlag,
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

/// FSDD's own split, or with a speaker held out.
fn fsdd_source(dir: &Path, held_out: Option<&str>) -> SpeechSource {
    match held_out {
        Some(s) => SpeechSource::FsddHeldOut {
            dir: dir.to_path_buf(),
            speaker: s.to_owned(),
        },
        None => SpeechSource::Fsdd(dir.to_path_buf()),
    }
}

fn source_of(d: &DataArgs) -> Result<SpeechSource> {
    Ok(match (&d.fsdd, &d.train, &d.valid) {
        (Some(dir), _, _) => fsdd_source(dir, d.fsdd_test_speaker.as_deref()),
        (None, Some(train), Some(valid)) => SpeechSource::Manifests {
            train: train.clone(),
            valid: valid.clone(),
            test: d.test.clone(),
            encoding: d.encoding.get(),
        },
        _ => bail!("give the recordings: --fsdd DIR, or --train and --valid manifests"),
    })
}

/// The word head of `--word-head` over the training transcripts, which must be one word each.
fn word_head(a: &TrainArgs, transcripts: &[&str]) -> Result<Option<WordHead>> {
    if a.word_head == 0.0 {
        return Ok(None);
    }
    ensure!(
        a.word_head.is_finite() && a.word_head > 0.0,
        "--word-head must be a positive weight (0: none), got {}",
        a.word_head
    );
    if let Some(t) = transcripts
        .iter()
        .find(|t| t.split_whitespace().count() != 1)
    {
        bail!(
            "--word-head classifies isolated words: every training transcript must be one \
             word, and {t:?} is not (connected utterances, --concat, cannot have one)"
        );
    }
    let words = words_of(transcripts.iter().copied()).len();
    ensure!(
        words >= 2,
        "--word-head needs at least two different words in the training transcripts"
    );
    Ok(Some(WordHead {
        words,
        weight: a.word_head,
    }))
}

fn settings(
    a: &TrainArgs,
    source: SpeechSource,
    labels: usize,
    word_head: Option<WordHead>,
) -> Result<(SpeechConfig, FeatureConfig, SpeechTrainConfig)> {
    let features = FeatureConfig {
        sample_rate: a.rate,
        n_mels: a.mels,
        deltas: a.deltas,
        ..FeatureConfig::default()
    };
    features.validate()?;
    let model = SpeechConfig {
        features: features.width(),
        stack: a.stack,
        cell: a.encoder.cell(),
        hidden: a.encoder.hidden,
        layers: a.encoder.layers,
        dropout: a.dropout,
        labels,
        word_head,
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
        batch: a.fit.batch,
        source,
        concat,
        speeds: a.speed.clone(),
        augment,
        decoding: match (word_head, a.beam, a.lexicon) {
            (Some(_), 1, false) => Decoding::Words,
            _ => decoding(a.beam, a.lexicon)?,
        },
        fit: a.fit.fit_config(&a.run, EPOCHS),
    };
    Ok((model, features, train))
}

/// The recordings of each part.
struct Parts {
    train: Vec<Utterance>,
    valid: Vec<Utterance>,
    test: Option<Vec<Utterance>>,
}

/// The recordings, with the run's source and settings for a resumed run, else the flags'.
fn load_parts(a: &TrainArgs, saved: Option<&SpeechRunConfig>) -> Result<(SpeechSource, Parts)> {
    let source = match saved {
        Some(c) => c.train.source.clone(),
        None => source_of(&a.data)?,
    };
    let concat = match saved {
        Some(c) => c.train.concat,
        None => a.concat.as_deref().map(Concat::parse).transpose()?,
    };
    let (rate, seed, speeds) = match saved {
        Some(c) => (
            c.data.features.sample_rate,
            c.train.fit.seed,
            c.train.speeds.clone(),
        ),
        None => (a.rate, a.fit.seed, a.speed.clone()),
    };
    let part = |p, sp: &[f32], s| source.load(p, rate, concat.as_ref(), sp, s);
    let parts = Parts {
        train: part(FsddSplit::Train, &speeds, seed.wrapping_add(0x5eed_0001))?.unwrap_or_default(),
        valid: part(FsddSplit::Valid, &[], VALID_SEED)?.unwrap_or_default(),
        test: part(FsddSplit::Test, &[], TEST_SEED)?,
    };
    Ok((source, parts))
}

/// The model, features, training settings and alphabet: a resumed run's own (with the
/// flags that may change), or from the flags and the training transcripts.
fn run_settings(
    a: &TrainArgs,
    saved: Option<&SpeechRunConfig>,
    source: SpeechSource,
    parts: &Parts,
) -> Result<(SpeechConfig, FeatureConfig, SpeechTrainConfig, Alphabet)> {
    Ok(match saved {
        Some(c) => {
            let fit = a.fit.resumed(&a.run, c.train.fit);
            let train = SpeechTrainConfig {
                fit,
                ..c.train.clone()
            };
            (
                c.model,
                c.data.features,
                train,
                Alphabet::from_chars(&c.data.alphabet),
            )
        }
        None => {
            let transcripts: Vec<&str> =
                parts.train.iter().map(|u| u.transcript.as_str()).collect();
            let alphabet = Alphabet::from_transcripts(transcripts.iter().copied());
            let head = word_head(a, &transcripts)?;
            let (m, f, t) = settings(a, source, alphabet.labels(), head)?;
            (m, f, t, alphabet)
        }
    })
}

fn train_cmd(a: TrainArgs) -> Result<()> {
    crate::set_threads(a.run.threads)?;
    let resumed = training::resumed::<_, _, _>(&a.run)?;
    let saved: Option<&SpeechRunConfig> = resumed.as_ref().map(|(_, c)| c);
    let t_load = std::time::Instant::now();
    let (source, parts) = load_parts(&a, saved)?;
    let (model_cfg, feat_cfg, train_cfg, alphabet) = run_settings(&a, saved, source, &parts)?;
    ensure!(train_cfg.batch >= 1, "--batch must be at least 1");
    let model = SpeechModel::new(model_cfg)?;
    train_cfg.fit.validate()?;
    if let Some(s) = &train_cfg.augment {
        s.validate()?;
    }
    let words = words_of(parts.train.iter().map(|u| u.transcript.as_str()));
    let prep = |u: &[Utterance]| -> Result<SpeechData> {
        let data = prepare(u, &feat_cfg, &alphabet, &model_cfg)?;
        Ok(match model_cfg.word_head {
            Some(_) => data.with_words(&words),
            None => data,
        })
    };
    let train = prep(&parts.train)?;
    let valid = prep(&parts.valid)?;
    let test = parts.test.as_deref().map(prep).transpose()?;
    let load_secs = t_load.elapsed().as_secs_f64();
    let (batch, augment) = (train_cfg.batch, train_cfg.augment);
    let mut task = SpeechTask::new(&model, &train, &valid, &alphabet, batch, augment)?;
    if model_cfg.word_head.is_some() {
        task = task.with_words(&words);
    }
    let mut params = model.init_params(train_cfg.fit.seed)?;
    let data = SpeechRunData {
        features: feat_cfg,
        alphabet: alphabet.chars(),
    };
    let config = SpeechRunConfig::new(model_cfg, train_cfg.clone(), data);
    if training::is_root() {
        print_start(
            &model,
            &alphabet,
            [&train, &valid],
            feat_cfg.hop_ms,
            load_secs,
        );
    }
    let run = training::open_run(resumed.map(|(r, _)| r), &a.run, &config, |run| {
        let mut text = words.join("\n");
        text.push('\n');
        Ok(run.write(&SpeechRunConfig::words_path(run.dir()), text.as_bytes())?)
    })?;
    let t0 = std::time::Instant::now();
    let outcome = training::fit(&mut task, &mut params, &train_cfg.fit, &run, Shown::Wer)?;
    if !run.is_writer() {
        return Ok(());
    }
    let secs = t0.elapsed().as_secs_f64();
    let lexicon = alphabet.lexicon(&words);
    let reader = Reader {
        alphabet: &alphabet,
        decoding: train_cfg.decoding,
        lexicon: Some(&lexicon),
        words: Some(&words),
    };
    report(
        &a,
        &run,
        &model,
        &outcome,
        (&valid, test.as_ref()),
        &reader,
        secs,
    )
}

/// Scores the best weights on the validation and test recordings, writes `summary.json`, and
/// prints the figures.
fn report(
    a: &TrainArgs,
    run: &Run,
    model: &SpeechModel,
    outcome: &FitOutcome,
    (valid, test): (&SpeechData, Option<&SpeechData>),
    reader: &Reader,
    secs: f64,
) -> Result<()> {
    let best = &outcome.best_params;
    let v = evaluate(model, best, valid, reader)?;
    let t = match test {
        Some(d) => Some(evaluate(model, best, d, reader)?),
        None => None,
    };
    let json = result_json(a, outcome, (&v, t.as_ref()), secs);
    training::finish(run, &json, a.run.json, || {
        let mut line = format!("valid {}", scores_text(&v));
        if let Some(s) = &t {
            line.push_str(&format!("; test {}", scores_text(s)));
        }
        format!(
            "{line}; best epoch {}, {} epochs, {secs:.0} s; run in {}",
            outcome.best_epoch,
            outcome.epochs_run,
            a.run.out.display()
        )
    })
}

/// The line on standard error that says what is trained on what.
fn print_start(
    model: &SpeechModel,
    alphabet: &Alphabet,
    [train, valid]: [&SpeechData; 2],
    hop: f32,
    load_secs: f64,
) {
    let head = match model.config().word_head {
        Some(h) => format!(" with a word head ({} words, weight {})", h.words, h.weight),
        None => String::new(),
    };
    eprintln!(
        "CTC {}{head}, {} parameters, {} labels ({:?} and the blank); {} train / {} valid utterances ({:.0} / {:.0} s of audio, read in {load_secs:.1} s), {} thread(s)",
        model.config().cell.name().to_uppercase(),
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

/// The run's final figures (its `summary.json`, and what `--json` prints).
fn result_json(
    a: &TrainArgs,
    outcome: &FitOutcome,
    (v, t): (&SpeechScores, Option<&SpeechScores>),
    secs: f64,
) -> serde_json::Value {
    serde_json::json!({
        "valid_accuracy": v.accuracy,
        "valid_wer": v.wer,
        "valid_cer": v.cer,
        "test_accuracy": t.map(|s| s.accuracy),
        "test_wer": t.map(|s| s.wer),
        "test_cer": t.map(|s| s.cer),
        "test_utterances": t.map(|s| s.utterances),
        "best_epoch": outcome.best_epoch,
        "epochs": outcome.epochs_run,
        "steps": outcome.steps,
        "seconds": secs,
        "run": a.run.out,
    })
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

/// The models of `dirs` as one (see [`Ensemble`]); `--beam`/`--lexicon` change one model's
/// decoding.
fn load_models(dirs: &[PathBuf], beam: Option<usize>, lexicon: bool) -> Result<Ensemble> {
    let change = beam.is_some() || lexicon;
    ensure!(
        !change || dirs.len() == 1,
        "--beam and --lexicon decode one model's characters: several models transcribe \
         together through their word heads"
    );
    let mut members = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let mut m = Trained::load(dir)
            .with_context(|| format!("{} is not a usable speech run", dir.display()))?;
        if change {
            m.config.train.decoding = decoding(beam.unwrap_or(8), lexicon)?;
        }
        members.push(m);
    }
    let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Ok(Ensemble::named(members, &names)?)
}

fn eval_cmd(a: EvalArgs) -> Result<()> {
    crate::set_threads(a.threads)?;
    let models = load_models(&a.model, a.beam, a.lexicon)?;
    let m = models.lead();
    let rate = m.config.data.features.sample_rate;
    let concat = match &a.concat {
        Some(c) => Some(Concat::parse(c)?),
        None => m.config.train.concat,
    };
    let held_out = match (&a.fsdd_test_speaker, &m.config.train.source) {
        (Some(s), _) => Some(s.as_str()),
        (None, SpeechSource::FsddHeldOut { speaker, .. }) => Some(speaker.as_str()),
        _ => None,
    };
    let source = match (&a.fsdd, &a.test) {
        (Some(dir), _) => fsdd_source(dir, held_out),
        (None, Some(t)) => SpeechSource::Manifests {
            train: t.clone(),
            valid: t.clone(),
            test: Some(t.clone()),
            encoding: a.encoding.or_run(m.encoding()),
        },
        _ => bail!("give the test recordings: --fsdd DIR or --test MANIFEST"),
    };
    let utts = source
        .load(FsddSplit::Test, rate, concat.as_ref(), &[], TEST_SEED)?
        .unwrap_or_default();
    let t_feat = std::time::Instant::now();
    let data = m.prepare(&utts)?;
    let feat_secs = t_feat.elapsed().as_secs_f64();
    let t0 = std::time::Instant::now();
    let s = models.evaluate(&data)?;
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
    let models = load_models(&a.model, a.beam, a.lexicon)?;
    let m = models.lead();
    let encoding = a.encoding.or_run(m.encoding());
    let utts = load_named(&a.files, m.config.data.features.sample_rate, encoding)?;
    // Transcripts are not known: featurise with empty ones (every recording is long enough).
    let data: SpeechData = m.prepare(&utts)?;
    let hyps = models.transcribe_data(&data)?;
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
            seqrnn::speech::alignment_picture(m, &data, i, hyp, &path)?;
        }
    }
    Ok(())
}
