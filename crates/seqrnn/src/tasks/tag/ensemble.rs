//! Several trained taggers deciding together.
//!
//! The members' per-token scores are averaged and decoded once. With CRF members the CRF
//! blocks (`crf.transitions`, `crf.start`, `crf.end`) are averaged too, so the decoded sequence
//! is the one that maximises the geometric mean of the members' sequence probabilities (each
//! member's log-probability of a path is its score minus a constant of the sentence). With
//! softmax members each token takes the label of highest mean log-probability.

use super::trained::{evaluate_file_with, label_names, tag_file_with};
use super::*;
use crate::model::crf::CrfWorkspace;
use crate::model::softmax::{log_softmax_row, RowMean};
use crate::tasks::tag::model::Head;

/// Taggers trained on the same labels (other seeds, other sizes), tagging as one.
///
/// Files are read as the first member reads them; every member must have the same labels in the
/// same order, the same tagging schemes, file format and head.
///
/// ```no_run
/// let runs = ["runs/conll-1", "runs/conll-2", "runs/conll-3"];
/// let ensemble = seqrnn::tag::Ensemble::load(&runs)?;
/// let labels = ensemble.tag(&["John lives in Paris"])?;
/// # Ok::<(), seqrnn::error::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Ensemble {
    members: Vec<Trained>,
    /// The members' mean CRF block (empty for softmax members).
    crf: Vec<f32>,
}

impl Ensemble {
    /// Reads the runs in `dirs` (see [`Trained::load`]) and checks that they agree.
    ///
    /// # Errors
    /// [`Trained::load`]'s errors; [`Error::Config`] for no run, or a run that disagrees with
    /// the first, naming both folders and what differs.
    pub fn load<P: AsRef<Path>>(dirs: &[P]) -> Result<Self> {
        let members = dirs.iter().map(Trained::load).collect::<Result<Vec<_>>>()?;
        let names: Vec<String> = dirs
            .iter()
            .map(|d| d.as_ref().display().to_string())
            .collect();
        Self::named(members, &names)
    }

    /// An ensemble of loaded taggers (named "tagger 1", "tagger 2", ... in errors).
    ///
    /// # Errors
    /// As [`Ensemble::load`].
    pub fn new(members: Vec<Trained>) -> Result<Self> {
        let names: Vec<String> = (1..=members.len()).map(|i| format!("tagger {i}")).collect();
        Self::named(members, &names)
    }

    /// An ensemble of loaded taggers, named in errors by `names` (one a member; their run
    /// folders, say).
    ///
    /// # Errors
    /// As [`Ensemble::load`]; [`Error::Config`] when `names` and `members` differ in number.
    pub fn named(members: Vec<Trained>, names: &[String]) -> Result<Self> {
        if names.len() != members.len() {
            return Err(Error::Config(format!(
                "{} names for {} taggers",
                names.len(),
                members.len()
            )));
        }
        let Some(lead) = members.first() else {
            return Err(Error::Config(
                "an ensemble needs at least one tagger".into(),
            ));
        };
        for (m, name) in members.iter().zip(names).skip(1) {
            if let Some(what) = disagreement(lead, m) {
                return Err(Error::Config(format!(
                    "{name} cannot join {}: {what}; an ensemble's taggers must be trained on \
                     the same labels, schemes and file format",
                    names[0]
                )));
            }
        }
        let mut crf = vec![0.0f32; lead.model.crf_params(&lead.params).len()];
        for m in &members {
            let block = m.model.crf_params(&m.params);
            crf.iter_mut().zip(block).for_each(|(a, v)| *a += v);
        }
        let n = members.len() as f32;
        crf.iter_mut().for_each(|a| *a /= n);
        Ok(Ensemble { members, crf })
    }

    /// The members, in order.
    pub fn members(&self) -> &[Trained] {
        &self.members
    }

    /// The first member: it reads files and names the labels.
    pub fn lead(&self) -> &Trained {
        &self.members[0]
    }

    /// Reads files in `encoding` (by default, as the first member's run read its files).
    pub fn set_encoding(&mut self, encoding: crate::data::text::Encoding) {
        self.members[0].config.train.read.encoding = encoding;
    }

    /// The mean per-token scores of every sentence, `[len, K]` row-major each, columns in the
    /// order of [`Trained::labels`]: the members' emissions (CRF members), or their
    /// log-probabilities (softmax members); an empty sentence has none.
    ///
    /// # Errors
    /// The members' errors.
    pub fn scores<S: Words>(&self, sentences: &[S]) -> Result<Vec<Vec<f32>>> {
        let k = self.lead().model.config().tags;
        let log_probs = self.lead().model.config().head == Head::Softmax;
        let mut mean = RowMean::default();
        for m in &self.members {
            let mut s = m.scores(sentences)?;
            if log_probs {
                s.iter_mut()
                    .flat_map(|x| x.chunks_exact_mut(k))
                    .for_each(log_softmax_row);
            }
            mean.add(s);
        }
        Ok(mean.mean())
    }

    /// The labels of every sentence, in the scheme of the training files (see
    /// [`Trained::tag`]).
    ///
    /// # Errors
    /// The members' errors.
    pub fn tag<S: Words>(&self, sentences: &[S]) -> Result<Vec<Vec<String>>> {
        let words: Vec<Vec<String>> = sentences.iter().map(Words::words).collect();
        Ok(label_names(self.lead(), &self.tag_ids(&words)?))
    }

    /// [`Trained::evaluate_file`] for the ensemble.
    ///
    /// # Errors
    /// As [`Trained::evaluate_file`].
    pub fn evaluate_file(&self, path: &Path) -> Result<(EntityScores, Vec<Vec<usize>>)> {
        evaluate_file_with(self.lead(), path, &|w| self.tag_ids(w))
    }

    /// [`Trained::tag_file`] for the ensemble.
    ///
    /// # Errors
    /// As [`Trained::tag_file`].
    pub fn tag_file(&self, path: &Path) -> Result<String> {
        tag_file_with(self.lead(), path, &|w| self.tag_ids(w))
    }

    /// Label ids (training scheme) of sentences given as words, decoded from the mean scores.
    fn tag_ids(&self, sentences: &[Vec<String>]) -> Result<Vec<Vec<u32>>> {
        let scores = self.scores(sentences)?;
        let model = &self.lead().model;
        let mut ws = CrfWorkspace::default();
        let mut tags = Vec::new();
        let mut out = Vec::with_capacity(scores.len());
        for (words, e) in sentences.iter().zip(&scores) {
            if words.is_empty() {
                out.push(Vec::new());
                continue;
            }
            model.decode(
                &self.crf,
                e,
                &[words.len()],
                words.len(),
                &mut tags,
                &mut ws,
            )?;
            out.push(tags.clone());
        }
        Ok(out)
    }
}

/// What makes `m` unable to decode with `lead`, if anything.
fn disagreement(lead: &Trained, m: &Trained) -> Option<&'static str> {
    let (a, b) = (&lead.config, &m.config);
    if lead.labels() != m.labels() {
        Some("its labels differ")
    } else if a.train.file_scheme != b.train.file_scheme
        || a.train.train_scheme != b.train.train_scheme
    {
        Some("its tagging schemes differ")
    } else if a.train.read.format != b.train.read.format
        || a.train.read.columns != b.train.read.columns
        || a.train.read.ud_label != b.train.read.ud_label
    {
        Some("it reads another file format or other columns")
    } else if a.model.head != b.model.head {
        Some("one has a CRF and the other not")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dropout::rng_from_seed;
    use crate::model::Weights;
    use crate::rnn::CellKind;
    use crate::tasks::tag::conll::ReadConfig;
    use crate::tasks::tag::model::TaggerConfig;
    use rand::RngExt;

    fn sentences() -> Vec<Sentence> {
        let s = |w: &str, l: &str| Sentence {
            words: w.split(' ').map(str::to_owned).collect(),
            labels: l.split(' ').map(str::to_owned).collect(),
            lines: (1..=w.split(' ').count()).collect(),
        };
        let mut v = vec![
            s(
                "John Smith lives in New York",
                "B-PER I-PER O O B-LOC I-LOC",
            ),
            s("Mary saw Paris", "B-PER O B-LOC"),
        ];
        to_scheme(&mut v, Scheme::Iob2, Scheme::Iobes, Path::new("t")).unwrap();
        v
    }

    /// A tagger with random weights (CRF scores too), its labels from [`sentences`].
    fn member(seed: u64, head: Head, hidden: usize) -> Trained {
        let vocabs = TagVocabs::build(&sentences(), 1);
        let mc = TaggerConfig {
            words: vocabs.words.len(),
            chars: vocabs.chars.len(),
            embed: 6,
            char_embed: 3,
            char_hidden: 3,
            cell: CellKind::Lstm,
            hidden,
            layers: 1,
            dropout: 0.0,
            dropout_kind: Default::default(),
            tags: vocabs.labels.len(),
            head,
        };
        let train = TagTrainConfig {
            batch: 2,
            min_freq: 1,
            unk_replace: 0.0,
            file_scheme: Some(Scheme::Iob2),
            train_scheme: Some(Scheme::Iobes),
            read: ReadConfig::default(),
            fit: FitConfig::default(),
        };
        let model = Tagger::new(mc, constraints(&vocabs.labels, train.train_scheme)).unwrap();
        let mut params = model.init_params(seed).unwrap();
        let mut rng = rng_from_seed(seed + 100);
        params
            .iter_mut()
            .for_each(|p| *p += rng.random_range(-1.0..1.0f32));
        Trained {
            config: TagRunConfig::new(mc, train, Default::default()),
            vocabs,
            model,
            params: Weights::new(params),
        }
    }

    /// `log p(y | x)` of every allowed path of a sentence under one CRF tagger, by enumeration.
    fn path_log_probs(m: &Trained, e: &[f32], len: usize) -> Vec<(Vec<usize>, f64)> {
        let k = m.model.config().tags;
        let p = m.model.crf_params(&m.params);
        let c = m.model.crf().unwrap().constraints();
        let mut paths = Vec::new();
        for code in 0..k.pow(len as u32) {
            let y: Vec<usize> = (0..len).map(|s| code / k.pow(s as u32) % k).collect();
            let ok = c.start[y[0]]
                && c.end[y[len - 1]]
                && y.windows(2).all(|w| c.transitions[w[0] * k + w[1]]);
            if !ok {
                continue;
            }
            let mut score = f64::from(p[k * k + y[0]] + p[k * k + k + y[len - 1]]);
            for s in 0..len {
                score += f64::from(e[s * k + y[s]]);
                if s > 0 {
                    score += f64::from(p[y[s - 1] * k + y[s]]);
                }
            }
            paths.push((y, score));
        }
        let lse = paths.iter().map(|(_, s)| s.exp()).sum::<f64>().ln();
        paths.into_iter().map(|(y, s)| (y, s - lse)).collect()
    }

    #[test]
    fn crf_members_decode_the_path_of_highest_mean_log_probability() {
        let members = vec![
            member(1, Head::Crf, 5),
            member(2, Head::Crf, 7),
            member(3, Head::Crf, 4),
        ];
        let ensemble = Ensemble::new(members.clone()).unwrap();
        let text = ["John lives in York", "Paris saw Smith", "Mary"];
        let tags = ensemble.tag(&text).unwrap();
        let mut disagreed = false;
        for (i, sentence) in text.iter().enumerate() {
            let len = sentence.split(' ').count();
            let mut total: Vec<(Vec<usize>, f64)> = Vec::new();
            for m in &members {
                let e = &m.scores(&[sentence]).unwrap()[0];
                let paths = path_log_probs(m, e, len);
                if total.is_empty() {
                    total = paths;
                } else {
                    total.iter_mut().zip(paths).for_each(|(a, b)| a.1 += b.1);
                }
                disagreed |= m.tag(&[sentence]).unwrap()[0] != tags[i];
            }
            let best = total.iter().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
            let names = label_names(&members[0], &[best.0.iter().map(|&t| t as u32).collect()]);
            assert_eq!(tags[i], names[0], "{sentence}");
        }
        assert!(
            disagreed,
            "the members should not all agree with the ensemble"
        );
    }

    #[test]
    fn one_member_tags_as_the_tagger_and_softmax_members_average_log_probabilities() {
        for head in [Head::Crf, Head::Softmax] {
            let m = member(4, head, 5);
            let text = ["John Smith lives in New York", "York Paris"];
            let alone = Ensemble::new(vec![m.clone()]).unwrap();
            assert_eq!(alone.tag(&text).unwrap(), m.tag(&text).unwrap());
        }
        let (a, b) = (member(5, Head::Softmax, 5), member(6, Head::Softmax, 6));
        let both = Ensemble::new(vec![a.clone(), b.clone()]).unwrap();
        let mean = both.scores(&["Mary lives in Paris"]).unwrap();
        let (sa, sb) = (
            a.scores(&["Mary lives in Paris"]).unwrap(),
            b.scores(&["Mary lives in Paris"]).unwrap(),
        );
        let k = a.model.config().tags;
        for (t, row) in mean[0].chunks_exact(k).enumerate() {
            let lp = |s: &[f32], j: usize| {
                let r = &s[t * k..(t + 1) * k];
                let lse = r.iter().map(|v| f64::from(*v).exp()).sum::<f64>().ln();
                f64::from(r[j]) - lse
            };
            for (j, v) in row.iter().enumerate() {
                let want = (lp(&sa[0], j) + lp(&sb[0], j)) / 2.0;
                assert!((f64::from(*v) - want).abs() < 1e-5, "{v} vs {want}");
            }
        }
    }

    #[test]
    fn members_that_disagree_are_refused() {
        assert!(Ensemble::new(Vec::new()).is_err());
        let err = Ensemble::new(vec![member(1, Head::Crf, 5), member(2, Head::Softmax, 5)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tagger 2 cannot join tagger 1"), "{err}");
        assert!(err.contains("CRF"), "{err}");
        let mut other = member(2, Head::Crf, 5);
        other.config.train.file_scheme = Some(Scheme::Iob1);
        let err = Ensemble::new(vec![member(1, Head::Crf, 5), other])
            .unwrap_err()
            .to_string();
        assert!(err.contains("schemes differ"), "{err}");
        let mut other = member(2, Head::Crf, 5);
        other.vocabs.labels = TagVocabs::build(&sentences()[1..], 1).labels;
        let err = Ensemble::new(vec![member(1, Head::Crf, 5), other])
            .unwrap_err()
            .to_string();
        assert!(err.contains("labels differ"), "{err}");
    }
}
