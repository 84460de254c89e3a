//! Tiny finished runs of every task, trained in a moment on a few made-up examples, for
//! doctests and tests of what opens runs ([`crate::load`]). Each function trains one run the
//! way the task's `seqrnn … train` does (its data preparation, its `Task`, [`fit()`]) and
//! returns its folder. Not for real use: the models learn next to nothing.

use std::path::{Path, PathBuf};

use crate::data::table::Table;
use crate::data::TokenKind;
use crate::error::{Error, Result};
use crate::rnn::CellKind;
use crate::run::{Existing, Run};
use crate::train::{fit, FitConfig, Silent};

/// Every task's tiny run, each in `dir/<task>` (one of [`super::TASKS`]), with its task.
///
/// # Errors
/// I/O errors; training errors.
pub fn all(dir: &Path) -> Result<Vec<(&'static str, PathBuf)>> {
    type Train = fn(&Path) -> Result<PathBuf>;
    let makers: [(&'static str, Train); 7] = [
        ("lm", lm),
        ("last-token", last_token),
        ("forecast", forecast),
        ("classify", classify),
        ("translate", translate),
        ("tag", tag),
        ("speech", speech),
    ];
    makers
        .into_iter()
        .map(|(task, train)| Ok((task, train(dir)?)))
        .collect()
}

/// A folder `dir/name`, created (emptied first).
fn fresh(dir: &Path, name: &str) -> Result<PathBuf> {
    let d = dir.join(name);
    if d.exists() {
        std::fs::remove_dir_all(&d).map_err(|cause| Error::Io {
            path: d.clone(),
            cause,
        })?;
    }
    std::fs::create_dir_all(&d).map_err(|cause| Error::Io {
        path: d.clone(),
        cause,
    })?;
    Ok(d)
}

/// Writes `text` to `path`.
fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })
}

/// A short training of the shared loop.
fn short_fit(epochs: usize, lr: f64) -> FitConfig {
    FitConfig {
        epochs,
        lr,
        ..FitConfig::default()
    }
}

/// A word corpus (`train.txt`, `valid.txt`) in `dir/name-data`.
fn word_corpus(dir: &Path, name: &str) -> Result<crate::data::Corpus> {
    let data = fresh(dir, &format!("{name}-data"))?;
    let line = "the company said it would buy the shares\n";
    write(&data.join("train.txt"), &line.repeat(30))?;
    write(&data.join("valid.txt"), "the company said it would buy\n")?;
    crate::data::load_word_corpus(&data, Default::default())
}

/// A language-model run (`seqrnn train`) in `dir/lm`.
///
/// # Errors
/// I/O errors; training errors.
pub fn lm(dir: &Path) -> Result<PathBuf> {
    use crate::tasks::lm::{LanguageModel, LmConfig, LmInit, LmRunConfig, LmRunData, TrainConfig};
    let corpus = word_corpus(dir, "lm")?;
    let out = fresh(dir, "lm")?;
    let config = LmConfig {
        vocab: corpus.vocab.len(),
        embed: 8,
        hidden: 8,
        layers: 1,
        ..Default::default()
    };
    let model = LanguageModel::new(config)?;
    let mut params = model.init_params(LmInit::Uniform(0.1), 1)?;
    let settings = TrainConfig {
        bptt: 5,
        batch: 2,
        epochs: 1,
        ..Default::default()
    };
    let train = serde_json::to_value(settings).map_err(|e| Error::Config(e.to_string()))?;
    let data = LmRunData {
        tokens: TokenKind::Word.into(),
        encoding: Default::default(),
    };
    let run = Run::create(
        &out,
        &LmRunConfig::new(config, train, data),
        Existing::Replace,
    )?;
    corpus.vocab.save(&run.dir().vocab_path())?;
    crate::tasks::lm::train(
        &model,
        &mut params,
        &corpus,
        &settings,
        &run,
        "tiny",
        &mut Silent,
    )?;
    Ok(out)
}

/// A last-token language-model run (`seqrnn train --objective last-token`, window 3) in
/// `dir/last-token`.
///
/// # Errors
/// I/O errors; training errors.
pub fn last_token(dir: &Path) -> Result<PathBuf> {
    use crate::tasks::lm::last_token::model::{LastTokenConfig, LastTokenModel};
    use crate::tasks::lm::last_token::{LastTokenRunConfig, LastTokenTask, LastTokenTrainConfig};
    use crate::tasks::lm::LmRunData;
    let corpus = word_corpus(dir, "last-token")?;
    let out = fresh(dir, "last-token")?;
    let model_cfg = LastTokenConfig {
        vocab: corpus.vocab.len(),
        embed: 8,
        cell: CellKind::Lstm,
        hidden: 8,
        layers: 1,
        dropout: 0.0,
    };
    let train = LastTokenTrainConfig {
        window: 3,
        batch: 16,
        eval_batch: 64,
        threads: crate::linalg::threads(),
        fit: short_fit(2, 1e-2),
    };
    let model = LastTokenModel::new(model_cfg)?;
    let mut task = LastTokenTask::new(
        &model,
        &corpus.train,
        &corpus.valid,
        train.window,
        train.batch,
        train.eval_batch,
    )?;
    let mut params = model.init_params(train.fit.seed)?;
    let data = LmRunData {
        tokens: TokenKind::Word.into(),
        encoding: Default::default(),
    };
    let config = LastTokenRunConfig::new(model_cfg, train, data);
    let run = Run::create(&out, &config, Existing::Replace)?;
    corpus.vocab.save(&run.dir().vocab_path())?;
    fit(&mut task, &mut params, &train.fit, &run, &mut Silent)?;
    Ok(out)
}

/// The table of the forecasting run: 200 rows of a sine wave, `date,load`.
///
/// # Errors
/// None in practice (the table is well formed).
pub fn load_table() -> Result<Table> {
    let mut csv = String::from("date,load\n");
    for r in 0..200 {
        csv += &format!("d{r},{}\n", (r as f32 * 0.3).sin());
    }
    Table::parse(&csv, Path::new("load.csv"))
}

/// A forecasting run (`seqrnn forecast train`: lookback 12, horizon 4, the `load` column of
/// [`load_table`]) in `dir/forecast`.
///
/// # Errors
/// I/O errors; training errors.
pub fn forecast(dir: &Path) -> Result<PathBuf> {
    use crate::tasks::forecast::model::{Forecaster, ForecasterConfig};
    use crate::tasks::forecast::{
        ColumnSpec, ForecastRunConfig, ForecastRunData, ForecastTask, ForecastTrainConfig, Mode,
        Series, Split,
    };
    let out = fresh(dir, "forecast")?;
    let table = load_table()?;
    let split = Split::Rows([120, 40, 40]);
    let ranges = split.ranges(table.rows, 12)?;
    let targets = ["load".to_string()];
    let columns = ColumnSpec::choose(
        &table,
        Mode::S,
        None,
        Some(&targets),
        Some("date"),
        ranges.train.clone(),
    )?;
    let series = Series::new(&table, &columns)?;
    let mc = ForecasterConfig {
        lookback: 12,
        horizon: 4,
        hidden: 8,
        ..Default::default()
    };
    let model = Forecaster::new(mc)?;
    let train = ForecastTrainConfig {
        batch: 8,
        fit: short_fit(1, 1e-3),
    };
    let mut task = ForecastTask::new(
        &model,
        &series,
        &columns.scaler,
        Series::windows(ranges.train, 12, 4),
        Series::windows(ranges.valid, 12, 4),
        train.batch,
    )?;
    let mut params = model.init_params(train.fit.seed)?;
    let data = ForecastRunData {
        columns: columns.clone(),
        split,
    };
    let config = ForecastRunConfig::new(mc, train, data);
    let run = Run::create(&out, &config, Existing::Replace)?;
    fit(&mut task, &mut params, &train.fit, &run, &mut Silent)?;
    Ok(out)
}

/// A classification run (`seqrnn classify train`: `pos` "a gripping film", `neg` "dull and far
/// too long") in `dir/classify`.
///
/// # Errors
/// I/O errors; training errors.
pub fn classify(dir: &Path) -> Result<PathBuf> {
    use crate::tasks::classify::data::{build_labels, build_vocab, encode_all, Example};
    use crate::tasks::classify::model::{Classifier, ClassifierConfig};
    use crate::tasks::classify::{ClassifyRunConfig, ClassifyTask, ClassifyTrainConfig};
    let out = fresh(dir, "classify")?;
    let ex = |label: &str, text: &str| Example {
        label: label.into(),
        tokens: text.split(' ').map(String::from).collect(),
    };
    let examples: Vec<Example> = (0..20)
        .flat_map(|_| {
            [
                ex("pos", "a gripping film"),
                ex("neg", "dull and far too long"),
            ]
        })
        .collect();
    let (vocab, labels) = (build_vocab(&examples, 1), build_labels(&examples));
    let enc = encode_all(&examples, &vocab, &labels, Path::new("train.tsv"))?;
    let mc = ClassifierConfig {
        vocab: vocab.len(),
        embed: 8,
        hidden: 8,
        dropout: 0.0,
        classes: labels.len(),
        ..Default::default()
    };
    let model = Classifier::new(mc)?;
    let train = ClassifyTrainConfig {
        batch: 8,
        min_freq: 1,
        word_dropout: 0.0,
        encoding: Default::default(),
        fit: short_fit(3, 1e-2),
    };
    let mut task = ClassifyTask::new(&model, &enc, &enc, train.batch)?;
    let mut params = model.init_params(train.fit.seed)?;
    let run = Run::create(
        &out,
        &ClassifyRunConfig::new(mc, train, Default::default()),
        Existing::Replace,
    )?;
    vocab.save(&run.dir().vocab_path())?;
    labels.save(&ClassifyRunConfig::labels_path(run.dir()))?;
    fit(&mut task, &mut params, &train.fit, &run, &mut Silent)?;
    Ok(out)
}

/// A translation run (`seqrnn translate train`, de → en, word vocabularies, beam 2) in
/// `dir/translate`.
///
/// # Errors
/// I/O errors; training errors.
pub fn translate(dir: &Path) -> Result<PathBuf> {
    use crate::data::subword::{Subword, SubwordConfig, SubwordVocab};
    use crate::tasks::translate::data::ParallelText;
    use crate::tasks::translate::model::{Seq2Seq, Seq2SeqConfig};
    use crate::tasks::translate::{
        encode_pairs, DecodeConfig, TranslateRunConfig, TranslateRunData, TranslateTask,
        TranslateTrainConfig,
    };
    let out = fresh(dir, "translate")?;
    let pairs = [
        ("ein hund", "a dog"),
        ("eine katze", "a cat"),
        ("ein hund läuft", "a dog runs"),
        ("eine katze schläft", "a cat sleeps"),
    ];
    let text = ParallelText {
        src: pairs.iter().map(|p| p.0.to_string()).collect(),
        tgt: pairs.iter().map(|p| p.1.to_string()).collect(),
    };
    let subword = SubwordConfig {
        kind: Subword::Word,
        vocab_size: 100,
        min_freq: 1,
    };
    let src_vocab = SubwordVocab::learn(&subword, &text.src)?;
    let tgt_vocab = SubwordVocab::learn(&subword, &text.tgt)?;
    let pairs = encode_pairs(&text, &src_vocab, &tgt_vocab, None, Path::new("train.de"))?;
    let mc = Seq2SeqConfig {
        src_vocab: src_vocab.len(),
        tgt_vocab: tgt_vocab.len(),
        embed: 8,
        enc_hidden: 8,
        dec_hidden: 8,
        attn_hidden: 8,
        dropout: 0.0,
        max_src_len: 20,
        ..Default::default()
    };
    let model = Seq2Seq::new(mc)?;
    let train = TranslateTrainConfig {
        batch: 4,
        subword,
        decode: DecodeConfig {
            beam: 2,
            ..DecodeConfig::default()
        },
        fit: short_fit(2, 1e-2),
    };
    let mut task = TranslateTask::new(&model, &pairs, &pairs, train.batch)?;
    let mut params = model.init_params(train.fit.seed)?;
    let data = TranslateRunData {
        src: "de".into(),
        tgt: "en".into(),
        encoding: Default::default(),
    };
    let run = Run::create(
        &out,
        &TranslateRunConfig::new(mc, train, data),
        Existing::Replace,
    )?;
    src_vocab.save(&TranslateRunConfig::src_vocab_path(run.dir()))?;
    tgt_vocab.save(&TranslateRunConfig::tgt_vocab_path(run.dir()))?;
    fit(&mut task, &mut params, &train.fit, &run, &mut Silent)?;
    Ok(out)
}

/// The CoNLL file the tagging run is trained on (`dir/tag.conll`, IOB2 entity tags).
pub fn tag_file(dir: &Path) -> PathBuf {
    dir.join("tag.conll")
}

/// A tagging run (`seqrnn tag train`: entity tags of [`tag_file`], trained in IOBES, softmax
/// head) in `dir/tag`.
///
/// # Errors
/// I/O errors; training errors.
pub fn tag(dir: &Path) -> Result<PathBuf> {
    use crate::tasks::tag::conll::{read_tagged, ReadConfig};
    use crate::tasks::tag::model::{Head, Tagger, TaggerConfig};
    use crate::tasks::tag::tags::{detect, Scheme};
    use crate::tasks::tag::{
        constraints, encode, is_entity_tagging, to_scheme, TagRunConfig, TagTask, TagTrainConfig,
        TagVocabs,
    };
    let out = fresh(dir, "tag")?;
    let conll = "John B-PER\nlives O\nin O\nParis B-LOC\n\nMary B-PER\nsaw O\nJohn B-PER\n\n";
    let path = tag_file(dir);
    write(&path, &conll.repeat(4))?;
    let read = ReadConfig::default();
    let mut file = read_tagged(&path, &read)?;
    let labels: Vec<Vec<String>> = file.sentences.iter().map(|s| s.labels.clone()).collect();
    let entities = is_entity_tagging(&labels);
    let (file_scheme, train_scheme) = (detect(&labels), Scheme::Iobes);
    to_scheme(&mut file.sentences, file_scheme, train_scheme, &path)?;
    let vocabs = TagVocabs::build(&file.sentences, 1);
    let enc = encode(&file.sentences, &vocabs, &path)?;
    let mc = TaggerConfig {
        words: vocabs.words.len(),
        chars: vocabs.chars.len(),
        embed: 8,
        char_embed: 4,
        char_hidden: 4,
        cell: CellKind::Lstm,
        hidden: 8,
        layers: 1,
        dropout: 0.0,
        dropout_kind: Default::default(),
        tags: vocabs.labels.len(),
        head: Head::Softmax,
    };
    let train = TagTrainConfig {
        batch: 4,
        min_freq: 1,
        unk_replace: 0.0,
        file_scheme: Some(file_scheme),
        train_scheme: Some(train_scheme),
        read,
        fit: short_fit(2, 1e-2),
    };
    let model = Tagger::new(mc, constraints(&vocabs.labels, train.train_scheme))?;
    let mut task = TagTask::new(&model, &enc, &enc, &vocabs.labels, entities, train.batch)?
        .with_unk_replace(train.unk_replace)?;
    let mut params = model.init_params(train.fit.seed)?;
    let run = Run::create(
        &out,
        &TagRunConfig::new(mc, train, Default::default()),
        Existing::Replace,
    )?;
    for (name, v) in [
        ("words", &vocabs.words),
        ("chars", &vocabs.chars),
        ("labels", &vocabs.labels),
    ] {
        v.save(&TagRunConfig::vocab_file(run.dir(), name))?;
    }
    fit(&mut task, &mut params, &train.fit, &run, &mut Silent)?;
    Ok(out)
}

/// Sample rate of the speech run's recordings.
pub const RATE: u32 = 8000;

/// A made-up recording at [`RATE`]: each word a 0.2 s tone (400 Hz `lo`, 1600 Hz `hi`), 0.05 s
/// of faint noise (seeded `seed`) around and between.
pub fn tones(words: &[&str], seed: u32) -> Vec<f32> {
    let n = |s: f32| (s * RATE as f32) as usize;
    let mut noise = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut out = Vec::new();
    let mut quiet = |out: &mut Vec<f32>| {
        for _ in 0..n(0.05) {
            noise = noise.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            out.push(((noise >> 16) as f32 / 65536.0 - 0.5) * 0.01);
        }
    };
    quiet(&mut out);
    for w in words {
        let f = if *w == "lo" { 400.0 } else { 1600.0 };
        for i in 0..n(0.2) {
            let t = i as f32 / RATE as f32;
            out.push(0.5 * (std::f32::consts::TAU * f * t).sin());
        }
        quiet(&mut out);
    }
    out
}

/// A speech run (`seqrnn speech train`: utterances of one or two [`tones`], 20 mel bands) in
/// `dir/speech`.
///
/// # Errors
/// I/O errors; training errors.
pub fn speech(dir: &Path) -> Result<PathBuf> {
    use crate::data::audio::FeatureConfig;
    use crate::tasks::speech::data::Utterance;
    use crate::tasks::speech::model::SpeechConfig;
    use crate::tasks::speech::{
        prepare, words_of, Alphabet, Decoding, SpeechRunConfig, SpeechRunData, SpeechSource,
        SpeechTask, SpeechTrainConfig,
    };
    let out = fresh(dir, "speech")?;
    let says: [&[&str]; 4] = [&["lo"], &["hi"], &["lo", "hi"], &["hi", "lo"]];
    let utterances: Vec<Utterance> = (0..8)
        .map(|i| {
            let words = says[i % says.len()];
            Utterance {
                source: format!("tone-{i}.wav"),
                speaker: String::new(),
                samples: tones(words, i as u32),
                transcript: words.join(" "),
            }
        })
        .collect();
    let alphabet = Alphabet::from_transcripts(utterances.iter().map(|u| u.transcript.as_str()));
    let features = FeatureConfig {
        sample_rate: RATE,
        n_mels: 20,
        ..FeatureConfig::default()
    };
    let mc = SpeechConfig {
        features: 20,
        stack: 3,
        cell: CellKind::Lstm,
        hidden: 8,
        layers: 1,
        dropout: 0.0,
        labels: alphabet.labels(),
        word_head: None,
    };
    let train = SpeechTrainConfig {
        batch: 4,
        source: SpeechSource::Manifests {
            train: "tones.tsv".into(),
            valid: "tones.tsv".into(),
            test: None,
            encoding: Default::default(),
        },
        concat: None,
        speeds: Vec::new(),
        augment: None,
        decoding: Decoding::Greedy,
        fit: short_fit(1, 1e-2),
    };
    let data = prepare(&utterances, &features, &alphabet, &mc)?;
    let model = crate::tasks::speech::model::SpeechModel::new(mc)?;
    let mut task = SpeechTask::new(&model, &data, &data, &alphabet, train.batch, None)?;
    let mut params = model.init_params(train.fit.seed)?;
    let config = SpeechRunConfig::new(
        mc,
        train.clone(),
        SpeechRunData {
            features,
            alphabet: alphabet.chars(),
        },
    );
    let run = Run::create(&out, &config, Existing::Replace)?;
    let mut words = words_of(data.transcripts.iter().map(String::as_str)).join("\n");
    words.push('\n');
    run.write(&SpeechRunConfig::words_path(run.dir()), words.as_bytes())?;
    fit(&mut task, &mut params, &train.fit, &run, &mut Silent)?;
    Ok(out)
}
