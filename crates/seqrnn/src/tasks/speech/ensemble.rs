//! Several acoustic models with word heads deciding together: each utterance takes the word of
//! highest mean log-probability over the members' word heads (the geometric mean of their word
//! distributions).

use super::*;

/// Acoustic models that classify isolated words (`--word-head`), trained on the same words
/// with the same features (other seeds, other sizes), transcribing as one. One model alone
/// transcribes with its run's decoding, word head or not.
///
/// Every member reads the featurised data of the first ([`Trained::prepare`]): members must
/// have the same features, alphabet, frame stacking and words.
#[derive(Clone, Debug)]
pub struct Ensemble {
    members: Vec<Trained>,
}

impl Ensemble {
    /// The models `members`, named in errors by `names` (their run folders, say).
    ///
    /// # Errors
    /// [`Error::Config`] for no model, `names` and `members` of different lengths, or a member
    /// that cannot join the first (no word head, other words, other features), naming both.
    pub fn named(members: Vec<Trained>, names: &[String]) -> Result<Self> {
        if members.is_empty() || names.len() != members.len() {
            return Err(Error::Config(format!(
                "an ensemble needs one name a model and at least one model, got {} names for {}",
                names.len(),
                members.len()
            )));
        }
        if members.len() > 1 {
            for (m, name) in members.iter().zip(names) {
                if m.config.model.word_head.is_none() {
                    return Err(Error::Config(format!(
                        "{name} has no word head: several models transcribe together through \
                         their word heads (speech train --word-head)"
                    )));
                }
            }
        }
        for (m, name) in members.iter().zip(names).skip(1) {
            if let Some(what) = disagreement(&members[0], m) {
                return Err(Error::Config(format!(
                    "{name} cannot join {}: {what}",
                    names[0]
                )));
            }
        }
        Ok(Ensemble { members })
    }

    /// The members, in order.
    pub fn members(&self) -> &[Trained] {
        &self.members
    }

    /// The first member: it featurises the recordings.
    pub fn lead(&self) -> &Trained {
        &self.members[0]
    }

    /// The mean word log-probabilities of every utterance of `data` (`[K]` each, in the order
    /// of [`Trained::words`]) and the members' mean loss per utterance.
    ///
    /// # Errors
    /// [`Error::Config`] for members without a word head; the models' errors.
    pub fn word_log_probs(&self, data: &SpeechData) -> Result<(Vec<Vec<f32>>, f64)> {
        let mut mean = crate::model::softmax::RowMean::default();
        let mut loss = 0.0;
        for m in &self.members {
            let (lp, total) = word_log_probs(&m.model, &m.params, data, true)?;
            loss += total / data.len().max(1) as f64;
            mean.add(lp);
        }
        Ok((mean.mean(), loss / self.members.len() as f64))
    }

    /// Error rates on `data` (featurised by [`Ensemble::lead`]); the loss is the members' mean.
    ///
    /// # Errors
    /// The models' and decoders' errors.
    pub fn evaluate(&self, data: &SpeechData) -> Result<SpeechScores> {
        if let [one] = self.members.as_slice() {
            return one.evaluate(data);
        }
        let (lp, loss) = self.word_log_probs(data)?;
        let n = data.len().max(1) as f64;
        Ok(scores(self.best_words(&lp), loss * n, data))
    }

    /// The transcript of each utterance of `data` (featurised by [`Ensemble::lead`]).
    ///
    /// # Errors
    /// The models' and decoders' errors.
    pub fn transcribe_data(&self, data: &SpeechData) -> Result<Vec<String>> {
        if let [one] = self.members.as_slice() {
            return one.transcribe_data(data);
        }
        Ok(self.best_words(&self.word_log_probs(data)?.0))
    }

    fn best_words(&self, lp: &[Vec<f32>]) -> Vec<String> {
        let words = &self.lead().words;
        lp.iter()
            .map(|row| words[crate::model::softmax::argmax(row)].clone())
            .collect()
    }
}

/// What keeps `m` from reading `lead`'s data and words, if anything.
fn disagreement(lead: &Trained, m: &Trained) -> Option<&'static str> {
    let (a, b) = (&lead.config, &m.config);
    if lead.words != m.words {
        Some("its words differ")
    } else if a.data.features != b.data.features {
        Some("its features differ")
    } else if lead.alphabet != m.alphabet || a.model.stack != b.model.stack {
        Some("its alphabet or frame stacking differs")
    } else {
        None
    }
}
