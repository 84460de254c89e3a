use super::*;

/// Padding entry of the word and character vocabularies (id 0); `<unk>` is id 1.
pub const PAD: &str = "<pad>";

/// Whether `labels` are entity tags (`O` or a `B/I/E/S-TYPE` tag).
pub fn is_entity_tagging<S: AsRef<str>>(labels: &[Vec<S>]) -> bool {
    let mut any_typed = false;
    for l in labels.iter().flatten() {
        let l = l.as_ref();
        if l == "O" {
            continue;
        }
        let (p, _) = split_tag(l);
        if !l.contains('-') || !matches!(p, "B" | "I" | "E" | "S") {
            return false;
        }
        any_typed = true;
    }
    any_typed
}

/// The vocabularies of a tagger: lowercased words, characters, and labels (in the training
/// scheme for entity tags).
#[derive(Clone, Debug, PartialEq)]
pub struct TagVocabs {
    /// `<pad>`, `<unk>`, then lowercased training words seen at least `min_freq` times, most
    /// frequent first.
    pub words: Vocab,
    /// `<pad>`, `<unk>`, then every training character, most frequent first.
    pub chars: Vocab,
    /// Labels, sorted.
    pub labels: Vocab,
}

impl TagVocabs {
    /// Builds the vocabularies from training sentences whose labels are already in the training
    /// scheme.
    pub fn build(sentences: &[Sentence], min_freq: usize) -> Self {
        let lower: Vec<String> = sentences
            .iter()
            .flat_map(|s| s.words.iter().map(|w| w.to_lowercase()))
            .collect();
        let words = by_frequency(lower.iter().map(String::as_str), min_freq.max(1));
        let chars_s: Vec<String> = sentences
            .iter()
            .flat_map(|s| s.words.iter().flat_map(|w| w.chars().map(String::from)))
            .collect();
        let chars = by_frequency(chars_s.iter().map(String::as_str), 1);
        let mut labels: Vec<&str> = sentences
            .iter()
            .flat_map(|s| s.labels.iter().map(String::as_str))
            .collect();
        labels.sort_unstable();
        labels.dedup();
        let mut l = Vocab::new();
        for x in labels {
            l.add(x);
        }
        TagVocabs {
            words,
            chars,
            labels: l,
        }
    }
}

fn by_frequency<'a>(items: impl Iterator<Item = &'a str>, min: usize) -> Vocab {
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for i in items {
        *counts.entry(i).or_default() += 1;
    }
    let mut v: Vec<(&str, usize)> = counts.into_iter().filter(|&(_, c)| c >= min).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut vocab = Vocab::new();
    vocab.add(PAD);
    vocab.add(UNK);
    for (w, _) in v {
        vocab.add(w);
    }
    vocab
}

/// Sentences as ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodedTags {
    /// Word ids per sentence.
    pub words: Vec<Vec<u32>>,
    /// Casing classes per sentence.
    pub cases: Vec<Vec<u32>>,
    /// Character ids per word per sentence.
    pub chars: Vec<Vec<Vec<u32>>>,
    /// Label ids per sentence.
    pub labels: Vec<Vec<u32>>,
}

impl EncodedTags {
    /// Number of sentences.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether there is no sentence.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Fills `batch` with sentences `idx`.
    pub fn batch(&self, idx: &[usize], batch: &mut TagBatch) {
        let b = idx.len();
        let t = idx.iter().map(|&i| self.words[i].len()).max().unwrap_or(0);
        batch.t = t;
        batch.lens.clear();
        batch.lens.extend(idx.iter().map(|&i| self.words[i].len()));
        for buf in [&mut batch.words, &mut batch.cases, &mut batch.tags] {
            buf.clear();
            buf.resize(t * b, 0);
        }
        for (j, &i) in idx.iter().enumerate() {
            for s in 0..self.words[i].len() {
                batch.words[s * b + j] = self.words[i][s];
                batch.cases[s * b + j] = self.cases[i][s];
                batch.tags[s * b + j] = self.labels[i][s];
            }
        }
        batch.chars.clear();
        for s in 0..t {
            for &i in idx {
                if s < self.words[i].len() {
                    batch.chars.push(self.chars[i][s].clone());
                }
            }
        }
    }
}

/// Encodes sentences (labels in the training scheme). Unknown words and characters become
/// `<unk>`; an unknown label is an error naming its line of `file`.
pub fn encode(sentences: &[Sentence], v: &TagVocabs, file: &Path) -> Result<EncodedTags> {
    let mut out = EncodedTags::default();
    let unk = 1;
    for s in sentences {
        out.words.push(
            s.words
                .iter()
                .map(|w| v.words.id(&w.to_lowercase()).unwrap_or(unk))
                .collect(),
        );
        out.cases.push(s.words.iter().map(|w| casing(w)).collect());
        out.chars.push(
            s.words
                .iter()
                .map(|w| {
                    w.chars()
                        .map(|c| v.chars.id(&c.to_string()).unwrap_or(unk))
                        .collect()
                })
                .collect(),
        );
        let mut labels = Vec::with_capacity(s.labels.len());
        for (l, &line) in s.labels.iter().zip(&s.lines) {
            labels.push(v.labels.id(l).ok_or_else(|| Error::Format {
                path: file.to_path_buf(),
                message: format!("line {line}: label `{l}` never appears in the training file"),
            })?);
        }
        out.labels.push(labels);
    }
    Ok(out)
}

/// Converts every sentence's labels to `to`, after checking them in `from` (the error names the
/// line of `file`).
pub fn to_scheme(sentences: &mut [Sentence], from: Scheme, to: Scheme, file: &Path) -> Result<()> {
    for s in sentences.iter_mut() {
        check(&s.labels, from).map_err(|(i, why)| Error::Format {
            path: file.to_path_buf(),
            message: format!("line {}: {why}", s.lines[i]),
        })?;
        s.labels = convert(&s.labels, to);
    }
    Ok(())
}

/// The CRF constraints of `labels` in `scheme` (AllenNLP's `allowed_transitions`): an `I-X` or
/// `E-X` only continues a `B-X` or `I-X`; with IOBES a `B-X`/`I-X` must be continued.
pub fn constraints(labels: &Vocab, scheme: Option<Scheme>) -> Constraints {
    let k = labels.len();
    let mut c = Constraints::none(k);
    let Some(scheme) = scheme else {
        return c;
    };
    let parts: Vec<(&str, &str)> = labels.tokens().iter().map(|l| split_tag(l)).collect();
    let opens = |p: &str| matches!(p, "B" | "I");
    for (j, &(p, kind)) in parts.iter().enumerate() {
        let continues = matches!(
            (scheme, p),
            (Scheme::Iob2, "I") | (Scheme::Iobes, "I" | "E")
        );
        c.start[j] = !continues;
        if scheme == Scheme::Iobes {
            c.end[j] = !opens(p);
        }
        for (i, &(q, prev_kind)) in parts.iter().enumerate() {
            let after_open = opens(q);
            let ok = match scheme {
                Scheme::Iob1 => true,
                Scheme::Iob2 => !continues || (after_open && prev_kind == kind),
                Scheme::Iobes => match continues {
                    true => after_open && prev_kind == kind,
                    false => !after_open,
                },
            };
            c.transitions[i * k + j] = ok;
        }
    }
    c
}
