//! Audio in, log-mel features out: WAV files, sample-rate conversion, log-mel filterbank
//! features, per-utterance normalisation and SpecAugment masking.
//!
//! Conventions:
//!
//! * **Samples** ([`Audio`]) are mono `f32`, nominally in `[-1, 1]`. Integer PCM of `b` bits is
//!   divided by `2^(b−1)` (8-bit WAV is unsigned: its offset of 128 is removed first, so silence
//!   is 0); 32-bit float is kept as stored. Several channels are mixed down by averaging them.
//! * **Resampling** ([`resample`], [`Resampler`]) goes through `rubato`'s FFT resampler: `n`
//!   samples at `s` Hz become `round(n · t / s)` samples at `t` Hz, aligned in time (the
//!   resampler's delay is removed), with an anti-aliasing low-pass when `t < s`.
//! * **Features** ([`FilterBank`]) follow `torchaudio.transforms.MelSpectrogram` with
//!   `center = false`, `power = 2`, `mel_scale = "htk"`, `norm = None`, followed by the
//!   natural logarithm: frame `t` covers samples `[t·hop, t·hop + win)`, multiplied by a
//!   periodic Hann window of `win` samples, zero-padded to `n_fft` and transformed; `|X|²`
//!   of the `n_fft/2 + 1` bins is weighted by triangular filters whose corners are spaced
//!   evenly on the HTK mel scale `2595 · log10(1 + f/700)` between `f_min` and `f_max` (peak
//!   weight 1, no area normalisation), and each band becomes `ln(mel + 1e-6)` ([`LOG_OFFSET`]:
//!   silence gives `ln 1e-6 ≈ −13.8` instead of `−∞`). With `n_fft = win` (the default for
//!   power-of-two windows) this is torchaudio's result exactly; with `n_fft > win` torchaudio
//!   centres the window inside `n_fft` samples of signal, so its frames start
//!   `(n_fft − win)/2` samples later and the last may be missing.
//! * **Frames**: `1 + (n − win) / hop` (integer division) for `n ≥ win` samples. A recording
//!   shorter than one window but not empty is zero-padded to one window and gives one frame;
//!   an empty one gives none ([`FeatureConfig::num_frames`]).
//! * **Layout**: features are `[frames, n_mels]`, row-major `f32` (one row per frame), the
//!   layout [`normalize_utterance`] and [`SpecAugment`] work on.
//!
//! One [`FilterBank`] holds the FFT plan, the window, the mel matrix and the work buffers;
//! build it once and reuse it for every utterance (likewise a [`Resampler`] for one pair of
//! rates).
//!
//! ```
//! use seqrnn::data::audio::{normalize_utterance, FeatureConfig, FilterBank, SpecAugment};
//!
//! let config = FeatureConfig::default(); // 8 kHz, 25 ms windows every 10 ms, 40 mels
//! let mut bank = FilterBank::new(config)?;
//! let tone: Vec<f32> = (0..8000)
//!     .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 8000.0).sin() * 0.5)
//!     .collect();
//! let mut features = Vec::new();
//! let frames = bank.compute(&tone, &mut features); // features[frames, 40]
//! assert_eq!(frames, 98);
//! normalize_utterance(&mut features, config.n_mels);
//! let mut rng = seqrnn::dropout::rng_from_seed(7);
//! SpecAugment::default().apply(&mut features, config.n_mels, &mut rng); // training only
//! # Ok::<(), seqrnn::Error>(())
//! ```

use std::fmt;
use std::io::Cursor;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use rand::RngExt;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Added to every mel energy before the logarithm: `ln(mel + LOG_OFFSET)`.
pub const LOG_OFFSET: f32 = 1e-6;

/// Smallest standard deviation [`normalize_utterance`] divides by: a channel that is
/// (nearly) constant over an utterance becomes (nearly) 0 instead of noise blown up.
pub const NORM_STD_FLOOR: f32 = 1e-5;

/// What [`read_wav`] accepts, for messages.
const SUPPORTED: &str = "supported are integer PCM (8, 16, 24 or 32 bit) and 32-bit IEEE float";

/// A recording: mono samples at one rate.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Audio {
    /// Samples per second.
    pub rate: u32,
    /// Mono samples, nominally in `[-1, 1]`.
    pub samples: Vec<f32>,
}

impl Audio {
    /// Length in seconds (0 when the rate is 0).
    pub fn duration_secs(&self) -> f64 {
        if self.rate == 0 {
            return 0.0;
        }
        self.samples.len() as f64 / self.rate as f64
    }
}

/// Reads a WAV file: any rate, any number of channels (averaged to mono), integer PCM of 8,
/// 16, 24 or 32 bits or 32-bit float (see the module documentation for the scaling). The file
/// is read whole into memory first.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read; [`Error::Data`] naming the file when it is not
/// a WAV file, is truncated (its header announces more samples than it holds), holds no
/// samples, or uses an encoding other than those above (A-law, µ-law, ADPCM, 64-bit float…).
pub fn read_wav(path: &Path) -> Result<Audio> {
    let bytes = std::fs::read(path).map_err(|cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    parse_wav(&bytes, path)
}

/// Decodes the bytes of a WAV file (see [`read_wav`]); `path` is used in messages only.
///
/// # Errors
/// [`Error::Data`] as [`read_wav`].
pub fn parse_wav(bytes: &[u8], path: &Path) -> Result<Audio> {
    let bad = |message: String| Error::Data {
        path: path.to_path_buf(),
        message,
    };
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(bad(not_wav_message(bytes)));
    }
    let mut reader =
        hound::WavReader::new(Cursor::new(bytes)).map_err(|e| bad(header_message(bytes, e)))?;
    let spec = reader.spec();
    let bits = spec.bits_per_sample;
    if spec.sample_format == hound::SampleFormat::Int && ![8, 16, 24, 32].contains(&bits) {
        return Err(bad(format!(
            "unsupported encoding: {bits}-bit integer PCM; {SUPPORTED}"
        )));
    }
    if reader.len() == 0 {
        return Err(bad("holds no samples (a 0-length recording)".into()));
    }
    let interleaved = match spec.sample_format {
        hound::SampleFormat::Float => read_samples(&mut reader, bytes.len(), |x: f32| x),
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            read_samples(&mut reader, bytes.len(), |x: i32| x as f32 * scale)
        }
    }
    .map_err(bad)?;
    Ok(Audio {
        rate: spec.sample_rate,
        samples: mix_down(interleaved, spec.channels as usize),
    })
}

/// All samples of `reader` (over a file of `file_len` bytes) converted by `convert`; a message
/// on failure (a truncated data chunk in particular).
fn read_samples<S: hound::Sample>(
    reader: &mut hound::WavReader<Cursor<&[u8]>>,
    file_len: usize,
    convert: impl Fn(S) -> f32,
) -> std::result::Result<Vec<f32>, String> {
    let total = reader.len() as usize;
    let channels = reader.spec().channels as usize;
    // The header's count may be a lie (truncated file): never reserve more than the file holds.
    let mut out = Vec::with_capacity(total.min(file_len));
    for sample in reader.samples::<S>() {
        match sample {
            Ok(x) => out.push(convert(x)),
            // Reading from memory fails only at the end of the bytes (hound reports a short
            // read as `UnexpectedEof` or as `Other`, depending on the width).
            Err(hound::Error::IoError(_)) => {
                return Err(format!(
                    "truncated: the header announces {} frames but the data ends after {}",
                    total / channels,
                    out.len() / channels
                ));
            }
            Err(e) => {
                return Err(format!(
                    "cannot decode sample {}: {e}; {SUPPORTED}",
                    out.len()
                ))
            }
        }
    }
    Ok(out)
}

/// Interleaved frames of `channels` samples averaged to one channel.
fn mix_down(interleaved: Vec<f32>, channels: usize) -> Vec<f32> {
    if channels == 1 {
        return interleaved;
    }
    let scale = 1.0 / channels as f32;
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() * scale)
        .collect()
}

/// Why bytes without a RIFF/WAVE header are not a WAV file, naming common formats.
fn not_wav_message(bytes: &[u8]) -> String {
    let looks_like = if bytes.is_empty() {
        " (the file is empty)"
    } else if bytes.starts_with(b"ID3") || (bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] >= 0xE0)
    {
        " (it looks like MP3)"
    } else if bytes.starts_with(b"fLaC") {
        " (it looks like FLAC)"
    } else if bytes.starts_with(b"OggS") {
        " (it looks like Ogg)"
    } else if bytes.starts_with(b"RF64") {
        " (it is RF64, the 64-bit variant, which is not supported)"
    } else if bytes.starts_with(b"RIFX") {
        " (it is big-endian RIFX, which is not supported)"
    } else {
        ""
    };
    format!("not a WAV file: it does not start with a RIFF/WAVE header{looks_like}")
}

/// A message for hound's refusal of a header.
fn header_message(bytes: &[u8], e: hound::Error) -> String {
    match e {
        // Reading from memory fails only at the end of the bytes.
        hound::Error::IoError(_) => {
            "truncated: the file ends inside its header (before the audio data)".into()
        }
        hound::Error::Unsupported => unsupported_message(bytes),
        hound::Error::FormatError(m) => match fmt_info(bytes) {
            Some((3, bits)) if bits != 32 => unsupported_message(bytes),
            _ => format!("not a valid WAV file: {m}"),
        },
        e => format!("not a readable WAV file: {e}"),
    }
}

/// "unsupported encoding: …" naming the encoding of the `fmt ` chunk where it can be found.
fn unsupported_message(bytes: &[u8]) -> String {
    match fmt_info(bytes) {
        Some((tag, bits)) => format!(
            "unsupported encoding: {} (format tag {tag}, {bits} bits per sample); {SUPPORTED}",
            encoding_name(tag)
        ),
        None => format!("unsupported encoding; {SUPPORTED}"),
    }
}

/// The format tag and bits per sample of the first `fmt ` chunk, with the sub-format's tag in
/// place of `WAVE_FORMAT_EXTENSIBLE` (0xFFFE).
fn fmt_info(bytes: &[u8]) -> Option<(u16, u16)> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(bytes.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(bytes.get(o..o + 4)?.try_into().ok()?));
    let mut at = 12;
    loop {
        let id = bytes.get(at..at + 4)?;
        let len = u32_at(at + 4)? as usize;
        if id == b"fmt " && len >= 16 {
            let tag = u16_at(at + 8)?;
            let bits = u16_at(at + 22)?;
            if tag == 0xFFFE && len >= 40 {
                // cbSize, valid bits, channel mask, then the sub-format GUID, whose first two
                // bytes are the format tag.
                return Some((u16_at(at + 8 + 24)?, bits));
            }
            return Some((tag, bits));
        }
        at = at.checked_add(8 + len + (len & 1))?;
    }
}

/// The name of a WAVE format tag.
fn encoding_name(tag: u16) -> String {
    match tag {
        0x0001 => "integer PCM".into(),
        0x0002 => "Microsoft ADPCM".into(),
        0x0003 => "IEEE float".into(),
        0x0006 => "A-law".into(),
        0x0007 => "µ-law".into(),
        0x0011 => "IMA ADPCM".into(),
        0x0031 => "GSM 6.10".into(),
        0x0050 => "MPEG".into(),
        0x0055 => "MPEG Layer 3 (MP3)".into(),
        _ => format!("WAVE format 0x{tag:04x}"),
    }
}

/// Converts samples from one fixed rate to another with `rubato`'s FFT resampler; build it
/// once per pair of rates and reuse it (it keeps its FFT plans and buffers).
pub struct Resampler {
    source: u32,
    target: u32,
    /// `None` when the rates are equal (a copy).
    fft: Option<Fft<f32>>,
    chunk: Vec<f32>,
    block: Vec<f32>,
}

impl fmt::Debug for Resampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resampler")
            .field("source", &self.source)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Resampler {
    /// A resampler from `source` Hz to `target` Hz.
    ///
    /// # Errors
    /// [`Error::Config`] when a rate is 0.
    pub fn new(source: u32, target: u32) -> Result<Resampler> {
        if source == 0 || target == 0 {
            return Err(Error::Config(format!(
                "sample rates must be positive, got {source} Hz to {target} Hz"
            )));
        }
        let fft = if source == target {
            None
        } else {
            let fft = Fft::new(source as usize, target as usize, 1024, 1, FixedSync::Both)
                .map_err(|e| {
                    Error::Config(format!("cannot resample {source} Hz to {target} Hz: {e}"))
                })?;
            Some(fft)
        };
        Ok(Resampler {
            source,
            target,
            fft,
            chunk: Vec::new(),
            block: Vec::new(),
        })
    }

    /// The input rate.
    pub fn source_rate(&self) -> u32 {
        self.source
    }

    /// The output rate.
    pub fn target_rate(&self) -> u32 {
        self.target
    }

    /// Samples out for `n` samples in: `round(n · target / source)`.
    pub fn output_len(&self, n: usize) -> usize {
        let (s, t) = (self.source as u128, self.target as u128);
        ((n as u128 * t + s / 2) / s) as usize
    }

    /// Resamples one recording (any length, including shorter than the resampler's chunk):
    /// [`Resampler::output_len`] samples, aligned in time with the input.
    ///
    /// # Errors
    /// [`Error::Config`] if `rubato` refuses a buffer (not expected).
    pub fn process(&mut self, samples: &[f32]) -> Result<Vec<f32>> {
        let want = self.output_len(samples.len());
        let (source, target) = (self.source, self.target);
        let failed = |e: &dyn fmt::Display| {
            Error::Config(format!("resampling {source} Hz to {target} Hz failed: {e}"))
        };
        let Some(fft) = self.fft.as_mut() else {
            return Ok(samples.to_vec());
        };
        if want == 0 {
            return Ok(Vec::new());
        }
        fft.reset();
        // The output lags the input by `delay` frames: run past the end on zeros, drop them.
        let delay = fft.output_delay();
        let mut out = Vec::with_capacity(delay + want + fft.output_frames_max());
        self.block.resize(fft.output_frames_max(), 0.0);
        let mut at = 0;
        while out.len() < delay + want {
            let n_in = fft.input_frames_next();
            let from = at.min(samples.len());
            let to = (at + n_in).min(samples.len());
            self.chunk.clear();
            self.chunk.extend_from_slice(&samples[from..to]);
            self.chunk.resize(n_in, 0.0);
            let input = InterleavedSlice::new(&self.chunk[..], 1, n_in).map_err(|e| failed(&e))?;
            let frames = self.block.len();
            let mut output = InterleavedSlice::new_mut(&mut self.block[..], 1, frames)
                .map_err(|e| failed(&e))?;
            let (used, made) = fft
                .process_into_buffer(&input, &mut output, None)
                .map_err(|e| failed(&e))?;
            out.extend_from_slice(&self.block[..made]);
            at += used;
        }
        out.drain(..delay);
        out.truncate(want);
        Ok(out)
    }
}

/// `audio`'s samples at `target_rate` Hz (a copy when the rates match), `round(n · target /
/// source)` of them; see [`Resampler`] to convert many recordings between the same rates.
///
/// # Errors
/// [`Error::Config`] when a rate is 0.
pub fn resample(audio: &Audio, target_rate: u32) -> Result<Vec<f32>> {
    Resampler::new(audio.rate, target_rate)?.process(&audio.samples)
}

/// Settings of the log-mel features (see the module documentation). `validate()` before use
/// ([`FilterBank::new`] does).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FeatureConfig {
    /// Rate of the samples, Hz.
    pub sample_rate: u32,
    /// Window length, milliseconds (rounded to whole samples).
    pub win_ms: f32,
    /// Hop between frames, milliseconds (rounded to whole samples).
    pub hop_ms: f32,
    /// FFT size, at least the window length; `None`: the next power of two ≥ the window.
    pub n_fft: Option<usize>,
    /// Mel bands.
    pub n_mels: usize,
    /// Lowest frequency of the filters, Hz.
    pub f_min: f32,
    /// Highest frequency of the filters, Hz; `None`: the Nyquist frequency.
    pub f_max: Option<f32>,
    /// Time derivatives appended to each frame after normalisation: 0 none, 1 deltas, 2 deltas
    /// and delta-deltas ([`append_deltas`]).
    pub deltas: usize,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig {
            sample_rate: 8000,
            win_ms: 25.0,
            hop_ms: 10.0,
            n_fft: None,
            n_mels: 40,
            f_min: 0.0,
            f_max: None,
            deltas: 0,
        }
    }
}

impl FeatureConfig {
    /// Values per frame: `n_mels · (1 + deltas)`.
    pub fn width(&self) -> usize {
        self.n_mels * (1 + self.deltas)
    }

    /// Window length in samples: `round(sample_rate · win_ms / 1000)`.
    pub fn win_length(&self) -> usize {
        ms_to_samples(self.sample_rate, self.win_ms)
    }

    /// Hop in samples: `round(sample_rate · hop_ms / 1000)`.
    pub fn hop_length(&self) -> usize {
        ms_to_samples(self.sample_rate, self.hop_ms)
    }

    /// FFT size: `n_fft`, or the next power of two ≥ the window length.
    pub fn fft_size(&self) -> usize {
        self.n_fft
            .unwrap_or_else(|| self.win_length().max(1).next_power_of_two())
    }

    /// Highest filter frequency in Hz: `f_max` or the Nyquist frequency.
    pub fn f_max_hz(&self) -> f32 {
        self.f_max.unwrap_or(self.sample_rate as f32 / 2.0)
    }

    /// Frames of `n` samples: 0 for none, 1 for `0 < n ≤ win` (shorter recordings are
    /// zero-padded to one window), `1 + (n − win) / hop` otherwise.
    pub fn num_frames(&self, n: usize) -> usize {
        let (win, hop) = (self.win_length(), self.hop_length().max(1));
        match n {
            0 => 0,
            n if n <= win => 1,
            n => 1 + (n - win) / hop,
        }
    }

    /// Checks every setting, including that each mel filter covers at least one FFT bin.
    pub fn validate(&self) -> Result<()> {
        if self.deltas > 2 {
            return Err(Error::Config(format!(
                "deltas must be 0 (none), 1 (deltas) or 2 (deltas and delta-deltas), got {}",
                self.deltas
            )));
        }
        self.validate_sizes()?;
        self.validate_band()?;
        let filters = mel_filters(self);
        if let Some(m) = filters.iter().position(|f| f.weights.is_empty()) {
            let n_fft = self.fft_size();
            return Err(Error::Config(format!(
                "{} mel bands are too many for n_fft = {n_fft} ({:.1} Hz per FFT bin) between \
                 {} and {} Hz: band {m} covers no FFT bin; use fewer mels or a larger n_fft",
                self.n_mels,
                self.sample_rate as f64 / n_fft as f64,
                self.f_min,
                self.f_max_hz()
            )));
        }
        Ok(())
    }

    /// Rate, window, hop, FFT size and band count.
    fn validate_sizes(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.sample_rate == 0 {
            return bad("the feature sample rate must be positive, got 0 Hz".into());
        }
        let win = self.win_length();
        if !(self.win_ms.is_finite() && win >= 2) {
            return bad(format!(
                "a window of {} ms at {} Hz is {win} samples; it needs at least 2",
                self.win_ms, self.sample_rate
            ));
        }
        if !(self.hop_ms.is_finite() && self.hop_length() >= 1) {
            return bad(format!(
                "a hop of {} ms at {} Hz is {} samples; it needs at least 1",
                self.hop_ms,
                self.sample_rate,
                self.hop_length()
            ));
        }
        if let Some(n) = self.n_fft {
            if n < win {
                return bad(format!(
                    "n_fft = {n} is smaller than the window of {win} samples"
                ));
            }
        }
        if self.n_mels == 0 {
            return bad("the number of mel bands must be at least 1, got 0".into());
        }
        Ok(())
    }

    /// `0 ≤ f_min < f_max ≤ Nyquist`.
    fn validate_band(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        let nyquist = self.sample_rate as f32 / 2.0;
        if !(self.f_min.is_finite() && self.f_min >= 0.0) {
            return bad(format!("f_min must be at least 0 Hz, got {}", self.f_min));
        }
        let f_max = self.f_max_hz();
        if !(f_max.is_finite() && f_max <= nyquist) {
            return bad(format!(
                "f_max = {f_max} Hz is above the Nyquist frequency ({nyquist} Hz at {} Hz)",
                self.sample_rate
            ));
        }
        if self.f_min >= f_max {
            return bad(format!(
                "f_min = {} Hz must be below f_max = {f_max} Hz",
                self.f_min
            ));
        }
        Ok(())
    }
}

/// `round(rate · ms / 1000)`, 0 for a negative or non-finite `ms`.
fn ms_to_samples(rate: u32, ms: f32) -> usize {
    let n = (rate as f64 * ms as f64 / 1000.0).round();
    if n.is_finite() && n > 0.0 {
        n as usize
    } else {
        0
    }
}

/// HTK mel of a frequency in Hz.
fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

/// Frequency in Hz of an HTK mel.
fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

/// One triangular filter: its nonzero weights, from FFT bin `start` on (empty when it covers
/// no bin).
#[derive(Clone, Debug, PartialEq)]
struct MelFilter {
    start: usize,
    weights: Vec<f32>,
}

/// The filters of `config` (torchaudio's `melscale_fbanks` with HTK mels, no normalisation).
fn mel_filters(config: &FeatureConfig) -> Vec<MelFilter> {
    let n_fft = config.fft_size();
    let bin_hz = config.sample_rate as f64 / n_fft as f64;
    let (m_min, m_max) = (
        hz_to_mel(config.f_min as f64),
        hz_to_mel(config.f_max_hz() as f64),
    );
    let step = (m_max - m_min) / (config.n_mels + 1) as f64;
    let corners: Vec<f64> = (0..config.n_mels + 2)
        .map(|i| mel_to_hz(m_min + step * i as f64))
        .collect();
    corners
        .windows(3)
        .map(|c| {
            let weight = |bin: usize| {
                let f = bin as f64 * bin_hz;
                let up = (f - c[0]) / (c[1] - c[0]);
                let down = (c[2] - f) / (c[2] - c[1]);
                up.min(down).max(0.0) as f32
            };
            let nonzero: Vec<usize> = (0..n_fft / 2 + 1).filter(|&b| weight(b) > 0.0).collect();
            match (nonzero.first(), nonzero.last()) {
                (Some(&a), Some(&b)) => MelFilter {
                    start: a,
                    weights: (a..=b).map(weight).collect(),
                },
                _ => MelFilter {
                    start: 0,
                    weights: Vec::new(),
                },
            }
        })
        .collect()
}

/// Log-mel filterbank features of one configuration: the FFT plan, the periodic Hann window,
/// the mel filters and the work buffers, built once and reused for every utterance.
#[derive(Clone)]
pub struct FilterBank {
    config: FeatureConfig,
    win: usize,
    hop: usize,
    window: Vec<f32>,
    filters: Vec<MelFilter>,
    fft: Arc<dyn RealToComplex<f32>>,
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
}

impl fmt::Debug for FilterBank {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterBank")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FilterBank {
    /// The features of `config`.
    ///
    /// # Errors
    /// [`Error::Config`] when [`FeatureConfig::validate`] fails.
    pub fn new(config: FeatureConfig) -> Result<FilterBank> {
        config.validate()?;
        let (win, n_fft) = (config.win_length(), config.fft_size());
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let window = (0..win)
            .map(|i| {
                let x = 2.0 * std::f64::consts::PI * i as f64 / win as f64;
                (0.5 - 0.5 * x.cos()) as f32
            })
            .collect();
        Ok(FilterBank {
            config,
            win,
            hop: config.hop_length(),
            window,
            filters: mel_filters(&config),
            frame: fft.make_input_vec(),
            spectrum: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            power: vec![0.0; n_fft / 2 + 1],
            fft,
        })
    }

    /// The settings.
    pub fn config(&self) -> &FeatureConfig {
        &self.config
    }

    /// Features per frame.
    pub fn n_mels(&self) -> usize {
        self.config.n_mels
    }

    /// Frames of `n` samples ([`FeatureConfig::num_frames`]).
    pub fn num_frames(&self, n: usize) -> usize {
        self.config.num_frames(n)
    }

    /// Log-mel features of `samples` (at the configured rate) into `out` (replaced):
    /// `[frames, n_mels]` row-major. Returns the number of frames.
    pub fn compute(&mut self, samples: &[f32], out: &mut Vec<f32>) -> usize {
        let frames = self.num_frames(samples.len());
        out.clear();
        out.reserve(frames * self.config.n_mels);
        for t in 0..frames {
            let start = t * self.hop;
            let end = (start + self.win).min(samples.len());
            self.power_spectrum(&samples[start..end]);
            for filter in &self.filters {
                let bins = &self.power[filter.start..filter.start + filter.weights.len()];
                let energy: f32 = bins.iter().zip(&filter.weights).map(|(p, w)| p * w).sum();
                out.push((energy + LOG_OFFSET).ln());
            }
        }
        frames
    }

    /// `|X|²` of one frame (at most `win` samples, zero-padded) into `self.power`.
    fn power_spectrum(&mut self, segment: &[f32]) {
        self.frame.fill(0.0);
        for ((x, s), w) in self.frame.iter_mut().zip(segment).zip(&self.window) {
            *x = s * w;
        }
        // The buffers come from the plan itself, so their lengths always fit.
        let done =
            self.fft
                .process_with_scratch(&mut self.frame, &mut self.spectrum, &mut self.scratch);
        debug_assert!(done.is_ok(), "FFT buffers sized by their plan");
        for (p, c) in self.power.iter_mut().zip(&self.spectrum) {
            *p = c.norm_sqr();
        }
    }
}

/// Per-utterance mean and variance normalisation of `features[frames, n_mels]`, in place: each
/// mel channel gets mean 0 and (population) standard deviation 1 over the frames. A channel
/// whose standard deviation is below [`NORM_STD_FLOOR`] is divided by the floor instead.
///
/// # Panics
/// If `n_mels` is 0 or does not divide `features.len()`.
pub fn normalize_utterance(features: &mut [f32], n_mels: usize) {
    assert!(
        n_mels > 0 && features.len().is_multiple_of(n_mels),
        "features of {} values are not [frames, {n_mels}]",
        features.len()
    );
    let frames = features.len() / n_mels;
    if frames == 0 {
        return;
    }
    let mut sum = vec![0f64; n_mels];
    let mut sum_sq = vec![0f64; n_mels];
    for row in features.chunks_exact(n_mels) {
        for ((s, q), &x) in sum.iter_mut().zip(&mut sum_sq).zip(row) {
            *s += x as f64;
            *q += x as f64 * x as f64;
        }
    }
    let n = frames as f64;
    let stats: Vec<(f32, f32)> = sum
        .iter()
        .zip(&sum_sq)
        .map(|(&s, &q)| {
            let mean = s / n;
            let std = (q / n - mean * mean).max(0.0).sqrt() as f32;
            (mean as f32, 1.0 / std.max(NORM_STD_FLOOR))
        })
        .collect();
    for row in features.chunks_exact_mut(n_mels) {
        for (x, &(mean, inv_std)) in row.iter_mut().zip(&stats) {
            *x = (*x - mean) * inv_std;
        }
    }
}

/// Frames on each side in [`append_deltas`]' regression (HTK's and Kaldi's `N = 2`).
pub const DELTA_WINDOW: usize = 2;

/// Appends time derivatives to `features[frames, n_mels]`, which becomes
/// `[frames, n_mels · (1 + order)]`: for `order ≥ 1` each frame gets its deltas
/// `d_t = Σ_{n=1..N} n · (c_{t+n} − c_{t−n}) / (2 Σ_{n=1..N} n²)` with `N =` [`DELTA_WINDOW`] and
/// the first and last frames repeated past the ends (HTK's and Kaldi's regression, as
/// `torchaudio.functional.compute_deltas` with `win_length = 5`), and for `order = 2` the
/// deltas of the deltas after them.
///
/// # Panics
/// If `n_mels` is 0 or does not divide `features.len()`.
pub fn append_deltas(features: &mut Vec<f32>, n_mels: usize, order: usize) {
    assert!(
        n_mels > 0 && features.len().is_multiple_of(n_mels),
        "features of {} values are not [frames, {n_mels}]",
        features.len()
    );
    if order == 0 {
        return;
    }
    let frames = features.len() / n_mels;
    let mut blocks = vec![std::mem::take(features)];
    for _ in 0..order {
        let last = blocks.last().map_or(&[][..], Vec::as_slice);
        let d = deltas(last, n_mels);
        blocks.push(d);
    }
    let width = n_mels * (1 + order);
    features.resize(frames * width, 0.0);
    for (t, row) in features.chunks_exact_mut(width).enumerate() {
        for (block, part) in blocks.iter().zip(row.chunks_exact_mut(n_mels)) {
            part.copy_from_slice(&block[t * n_mels..(t + 1) * n_mels]);
        }
    }
}

/// The deltas `[frames, n_mels]` of `c[frames, n_mels]` (see [`append_deltas`]).
fn deltas(c: &[f32], n_mels: usize) -> Vec<f32> {
    let frames = c.len() / n_mels;
    let denom = 2.0 * (1..=DELTA_WINDOW).map(|n| (n * n) as f32).sum::<f32>();
    let mut d = vec![0.0f32; c.len()];
    let at = |t: isize, m: usize| c[t.clamp(0, frames as isize - 1) as usize * n_mels + m];
    for t in 0..frames {
        for m in 0..n_mels {
            let mut sum = 0.0f32;
            for n in 1..=DELTA_WINDOW {
                let n_i = n as isize;
                sum += n as f32 * (at(t as isize + n_i, m) - at(t as isize - n_i, m));
            }
            d[t * n_mels + m] = sum / denom;
        }
    }
    d
}

/// SpecAugment masking (Park et al., 2019) for training, without time warping: bands of
/// mel channels and runs of frames set to 0 (the mean after [`normalize_utterance`]).
///
/// Each frequency mask has a width `f` drawn uniformly from `0..=freq_width` (at most
/// `n_mels`) and a first channel from `0..=n_mels − f`; each time mask a width from
/// `0..=min(time_width, ⌊max_time_fraction · frames⌋)` and a first frame likewise. Masks may
/// overlap. The draws depend only on the generator, the shape and the settings, so a seeded
/// generator gives the same masks every time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecAugment {
    /// Frequency masks per utterance.
    pub freq_masks: usize,
    /// Widest frequency mask, in mel channels (`F`).
    pub freq_width: usize,
    /// Time masks per utterance.
    pub time_masks: usize,
    /// Widest time mask, in frames (`T`).
    pub time_width: usize,
    /// Widest time mask as a fraction of the utterance's frames (`p`), in `[0, 1]`.
    pub max_time_fraction: f32,
}

impl Default for SpecAugment {
    /// Two masks of at most 10 of 40 channels, two of at most 40 frames (0.4 s at a 10 ms hop)
    /// and a fifth of the utterance.
    fn default() -> Self {
        SpecAugment {
            freq_masks: 2,
            freq_width: 10,
            time_masks: 2,
            time_width: 40,
            max_time_fraction: 0.2,
        }
    }
}

/// The masks [`SpecAugment`] drew for one utterance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Masks {
    /// Masked mel channels, one range per mask (possibly empty).
    pub freq: Vec<Range<usize>>,
    /// Masked frames, one range per mask (possibly empty).
    pub time: Vec<Range<usize>>,
}

impl Masks {
    /// Sets the masked cells of `features[frames, n_mels]` to 0.
    ///
    /// # Panics
    /// If `n_mels` is 0 or does not divide `features.len()`, or a mask lies outside.
    pub fn apply(&self, features: &mut [f32], n_mels: usize) {
        self.apply_blocks(features, n_mels, n_mels);
    }

    /// Sets the masked cells of `features[frames, width]` to 0, where each frame is blocks of
    /// `n_mels` channels (the features, then their deltas): a frequency mask covers its
    /// channels in every block.
    ///
    /// # Panics
    /// If `n_mels` is 0, does not divide `width`, or `width` does not divide `features.len()`,
    /// or a mask lies outside.
    pub fn apply_blocks(&self, features: &mut [f32], n_mels: usize, width: usize) {
        assert!(
            n_mels > 0
                && width.is_multiple_of(n_mels)
                && features.len().is_multiple_of(width.max(1)),
            "features of {} values are not [frames, {width}] in blocks of {n_mels}",
            features.len()
        );
        for block in features.chunks_exact_mut(n_mels) {
            for band in &self.freq {
                block[band.clone()].fill(0.0);
            }
        }
        for run in &self.time {
            features[run.start * width..run.end * width].fill(0.0);
        }
    }
}

impl SpecAugment {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        let p = self.max_time_fraction;
        if !(p.is_finite() && (0.0..=1.0).contains(&p)) {
            return Err(Error::Config(format!(
                "the SpecAugment time-mask fraction must be in [0, 1], got {p}"
            )));
        }
        Ok(())
    }

    /// Draws the masks of an utterance of `frames` frames and `n_mels` channels.
    pub fn draw<R: rand::Rng + ?Sized>(&self, frames: usize, n_mels: usize, rng: &mut R) -> Masks {
        let time_cap = (self.max_time_fraction as f64 * frames as f64).floor() as usize;
        Masks {
            freq: draw_runs(self.freq_masks, self.freq_width, n_mels, rng),
            time: draw_runs(self.time_masks, self.time_width.min(time_cap), frames, rng),
        }
    }

    /// Draws masks for `features[frames, n_mels]` and zeroes them in place; returns them.
    ///
    /// # Panics
    /// If `n_mels` is 0 or does not divide `features.len()`.
    pub fn apply<R: rand::Rng + ?Sized>(
        &self,
        features: &mut [f32],
        n_mels: usize,
        rng: &mut R,
    ) -> Masks {
        self.apply_blocks(features, n_mels, n_mels, rng)
    }

    /// [`SpecAugment::apply`] for frames of `width` values in blocks of `n_mels` channels (see
    /// [`Masks::apply_blocks`]).
    ///
    /// # Panics
    /// As [`Masks::apply_blocks`].
    pub fn apply_blocks<R: rand::Rng + ?Sized>(
        &self,
        features: &mut [f32],
        n_mels: usize,
        width: usize,
        rng: &mut R,
    ) -> Masks {
        assert!(
            n_mels > 0 && width > 0 && features.len().is_multiple_of(width),
            "features of {} values are not [frames, {width}]",
            features.len()
        );
        let masks = self.draw(features.len() / width, n_mels, rng);
        masks.apply_blocks(features, n_mels, width);
        masks
    }
}

/// `count` runs in `0..len`, each of a width drawn from `0..=max_width.min(len)` and a start
/// drawn so that it fits.
fn draw_runs<R: rand::Rng + ?Sized>(
    count: usize,
    max_width: usize,
    len: usize,
    rng: &mut R,
) -> Vec<Range<usize>> {
    let max_width = max_width.min(len);
    (0..count)
        .map(|_| {
            let width = rng.random_range(0..=max_width);
            let start = rng.random_range(0..=len - width);
            start..start + width
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::f64::consts::PI;
    use std::io::ErrorKind;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::dropout::rng_from_seed;

    /// A folder under the system's temporary folder, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("seqrnn-audio-test-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn sine(freq: f64, rate: u32, n: usize, amplitude: f64) -> Vec<f32> {
        (0..n)
            .map(|i| (amplitude * (2.0 * PI * freq * i as f64 / rate as f64).sin()) as f32)
            .collect()
    }

    /// Test values in [-0.9, 0.9], including 0 and both signs.
    fn values() -> Vec<f32> {
        let mut v = sine(440.0, 8000, 200, 0.9);
        v.extend([0.0, 0.5, -0.5, 0.9, -0.9, 0.001, -0.001]);
        v
    }

    /// Writes `channels` (each one channel's samples) as a WAV of the given encoding.
    fn write_wav(path: &Path, rate: u32, bits: u16, float: bool, channels: &[Vec<f32>]) {
        let spec = hound::WavSpec {
            channels: channels.len() as u16,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        let full = (1i64 << (bits - 1)) as f64;
        for i in 0..channels[0].len() {
            for c in channels {
                let x = c[i];
                if float {
                    w.write_sample(x).unwrap();
                } else {
                    let q = (x as f64 * full).round().clamp(-full, full - 1.0);
                    match bits {
                        8 => w.write_sample(q as i8).unwrap(),
                        16 => w.write_sample(q as i16).unwrap(),
                        _ => w.write_sample(q as i32).unwrap(),
                    }
                }
            }
        }
        w.finalize().unwrap();
    }

    const ENCODINGS: [(u16, bool); 5] = [
        (8, false),
        (16, false),
        (24, false),
        (32, false),
        (32, true),
    ];

    fn tolerance(bits: u16, float: bool) -> f32 {
        if float {
            0.0
        } else {
            // Half a quantisation step, plus f32 rounding for 32 bits.
            0.5 / (1u64 << (bits - 1)) as f32 + 1e-7
        }
    }

    #[test]
    fn every_encoding_round_trips_mono() {
        let dir = TempDir::new();
        let x = values();
        for (bits, float) in ENCODINGS {
            let path = dir.path(&format!("mono-{bits}-{float}.wav"));
            write_wav(&path, 11025, bits, float, std::slice::from_ref(&x));
            let audio = read_wav(&path).unwrap();
            assert_eq!(audio.rate, 11025);
            assert_eq!(audio.samples.len(), x.len());
            let tol = tolerance(bits, float);
            for (i, (a, b)) in audio.samples.iter().zip(&x).enumerate() {
                assert!(
                    (a - b).abs() <= tol,
                    "{bits} bit (float {float}), sample {i}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn eight_bit_is_unsigned_with_silence_at_128() {
        let dir = TempDir::new();
        let path = dir.path("u8.wav");
        write_wav(&path, 8000, 8, false, &[vec![0.0, -1.0, 0.5]]);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[bytes.len() - 3..], &[128, 0, 192]);
        assert_eq!(read_wav(&path).unwrap().samples, vec![0.0, -1.0, 0.5]);
    }

    #[test]
    fn stereo_is_averaged() {
        let dir = TempDir::new();
        let x = values();
        let neg: Vec<f32> = x.iter().map(|v| -v).collect();
        for (bits, float) in ENCODINGS {
            let mono_path = dir.path(&format!("m-{bits}-{float}.wav"));
            let same_path = dir.path(&format!("s-{bits}-{float}.wav"));
            let opposite_path = dir.path(&format!("o-{bits}-{float}.wav"));
            write_wav(&mono_path, 16000, bits, float, std::slice::from_ref(&x));
            write_wav(&same_path, 16000, bits, float, &[x.clone(), x.clone()]);
            write_wav(
                &opposite_path,
                16000,
                bits,
                float,
                &[x.clone(), neg.clone()],
            );
            let mono = read_wav(&mono_path).unwrap();
            let same = read_wav(&same_path).unwrap();
            let opposite = read_wav(&opposite_path).unwrap();
            assert_eq!(same, mono, "{bits} bit (float {float})");
            assert_eq!(opposite.samples.len(), x.len());
            assert!(opposite.samples.iter().all(|&v| v == 0.0), "{bits} bit");
        }
    }

    /// The message of an `Error::Data` about `path`.
    fn data_message(e: Error, path: &Path) -> String {
        match e {
            Error::Data { path: p, message } => {
                assert_eq!(p, path);
                message
            }
            other => panic!("expected a data error, got {other:?}"),
        }
    }

    #[test]
    fn text_and_mp3_are_not_wav() {
        let dir = TempDir::new();
        let text = dir.path("notes.wav");
        std::fs::write(&text, "these are not samples\n").unwrap();
        let m = data_message(read_wav(&text).unwrap_err(), &text);
        assert!(m.contains("not a WAV file"), "{m}");
        let mp3 = dir.path("song.mp3");
        std::fs::write(&mp3, b"ID3\x04\x00\x00\x00\x00\x00\x00 and so on").unwrap();
        let m = data_message(read_wav(&mp3).unwrap_err(), &mp3);
        assert!(m.contains("not a WAV file") && m.contains("MP3"), "{m}");
        let empty = dir.path("empty.wav");
        std::fs::write(&empty, b"").unwrap();
        let m = data_message(read_wav(&empty).unwrap_err(), &empty);
        assert!(m.contains("not a WAV file") && m.contains("empty"), "{m}");
        // The message names the file.
        assert!(read_wav(&text)
            .unwrap_err()
            .to_string()
            .contains("notes.wav"));
    }

    #[test]
    fn truncated_wav_is_an_error() {
        let dir = TempDir::new();
        for (bits, float) in ENCODINGS {
            let path = dir.path(&format!("cut-{bits}-{float}.wav"));
            write_wav(&path, 8000, bits, float, &[values(), values()]);
            let bytes = std::fs::read(&path).unwrap();
            // Mid-sample and on a sample boundary.
            for cut in [1, 2 * bits as usize / 8 * 10] {
                std::fs::write(&path, &bytes[..bytes.len() - cut]).unwrap();
                let m = data_message(read_wav(&path).unwrap_err(), &path);
                assert!(m.contains("truncated"), "{bits} bit, cut {cut}: {m}");
            }
        }
        // Cut inside the header.
        let path = dir.path("header.wav");
        write_wav(&path, 8000, 16, false, &[values()]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..30]).unwrap();
        let m = data_message(read_wav(&path).unwrap_err(), &path);
        assert!(m.contains("truncated"), "{m}");
    }

    #[test]
    fn empty_recording_is_an_error() {
        let dir = TempDir::new();
        let path = dir.path("silence.wav");
        write_wav(&path, 8000, 16, false, &[vec![]]);
        let m = data_message(read_wav(&path).unwrap_err(), &path);
        assert!(m.contains("no samples"), "{m}");
    }

    /// A WAV file with the given format tag and bits per sample, one channel and 4 samples.
    fn wav_with_format_tag(tag: u16, bits: u16) -> Vec<u8> {
        let align = bits / 8;
        let data = vec![0x55u8; 4 * align as usize];
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(4 + 8 + 18 + 8 + data.len() as u32).to_le_bytes());
        b.extend_from_slice(b"WAVE");
        b.extend_from_slice(b"fmt ");
        b.extend_from_slice(&18u32.to_le_bytes());
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes()); // channels
        b.extend_from_slice(&8000u32.to_le_bytes()); // rate
        b.extend_from_slice(&(8000 * align as u32).to_le_bytes()); // bytes per second
        b.extend_from_slice(&align.to_le_bytes()); // block align
        b.extend_from_slice(&bits.to_le_bytes()); // bits per sample
        b.extend_from_slice(&0u16.to_le_bytes()); // cbSize
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&data);
        b
    }

    #[test]
    fn unsupported_encodings_are_named() {
        let dir = TempDir::new();
        for (tag, bits, name) in [(6, 8, "A-law"), (7, 8, "µ-law"), (3, 64, "IEEE float")] {
            let path = dir.path(&format!("tag{tag}.wav"));
            std::fs::write(&path, wav_with_format_tag(tag, bits)).unwrap();
            let m = data_message(read_wav(&path).unwrap_err(), &path);
            assert!(m.contains("unsupported") && m.contains(name), "{m}");
            assert!(
                m.contains("integer PCM") && m.contains("32-bit IEEE float"),
                "{m}"
            );
        }
        // The hand-made header is otherwise valid: with tag 1 it reads as 8-bit PCM.
        let audio = parse_wav(&wav_with_format_tag(1, 8), Path::new("pcm.wav")).unwrap();
        assert_eq!(audio.samples, vec![(0x55 - 128) as f32 / 128.0; 4]);
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let dir = TempDir::new();
        let path = dir.path("absent.wav");
        match read_wav(&path) {
            Err(Error::Io { path: p, cause }) => {
                assert_eq!(p, path);
                assert_eq!(cause.kind(), ErrorKind::NotFound);
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }

    /// Frequency (Hz, on a 1 Hz grid up to Nyquist) of the largest plain-DFT magnitude of
    /// `x`, a whole number of seconds long.
    fn peak_frequency(x: &[f32], rate: u32) -> f64 {
        let n = x.len();
        let seconds = n as f64 / rate as f64;
        let mut best = (0.0, 0.0);
        for k in 1..(n / 2) {
            let w = 2.0 * PI * k as f64 / n as f64;
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &v) in x.iter().enumerate() {
                re += v as f64 * (w * i as f64).cos();
                im -= v as f64 * (w * i as f64).sin();
            }
            let mag = re * re + im * im;
            if mag > best.1 {
                best = (k as f64 / seconds, mag);
            }
        }
        best.0
    }

    #[test]
    fn resampling_keeps_a_tone() {
        for (source, freq) in [(16000, 440.0), (44100, 440.0), (16000, 1000.0)] {
            let audio = Audio {
                rate: source,
                samples: sine(freq, source, source as usize, 0.5),
            };
            let out = resample(&audio, 8000).unwrap();
            assert_eq!(out.len(), 8000, "{source} Hz");
            let peak = peak_frequency(&out, 8000);
            assert!((peak - freq).abs() <= 1.0, "{source} Hz: peak at {peak} Hz");
            // Same amplitude and phase as the ideal tone away from the ends: project the
            // middle on sin and cos of the tone.
            let middle = 1000..7000;
            let project = |phase: f64| -> f64 {
                let (mut dot, mut norm) = (0.0, 0.0);
                for i in middle.clone() {
                    let b = (2.0 * PI * freq * i as f64 / 8000.0 + phase).sin();
                    dot += out[i] as f64 * b;
                    norm += b * b;
                }
                dot / norm
            };
            let (s, c) = (project(0.0), project(PI / 2.0));
            let amplitude = (s * s + c * c).sqrt();
            assert!(
                (amplitude - 0.5).abs() < 0.005,
                "{source} Hz: amplitude {amplitude}"
            );
            // rubato aligns to the input sample (at 44.1 kHz it leads by half of one).
            let shift = c.atan2(s) / (2.0 * PI * freq);
            assert!(
                shift.abs() <= 1.0 / source as f64,
                "{source} Hz: shifted {shift} s"
            );
        }
    }

    #[test]
    fn resampling_lengths_and_short_inputs() {
        let mut r = Resampler::new(16000, 8000).unwrap();
        for n in [0, 1, 2, 3, 10, 1001, 5000] {
            let out = r.process(&vec![0.25; n]).unwrap();
            assert_eq!(out.len(), n.div_ceil(2), "{n} samples");
        }
        // A short input shorter than the resampler's chunk keeps its level (no leading delay).
        let out = r.process(&[0.25; 300]).unwrap();
        assert_eq!(out.len(), 150);
        assert!(
            out[20..130].iter().all(|v| (v - 0.25).abs() < 0.01),
            "{out:?}"
        );
        let mut up = Resampler::new(8000, 44100).unwrap();
        assert_eq!(up.process(&[0.0; 100]).unwrap().len(), 551); // 551.25
        assert_eq!(up.output_len(8000), 44100);
        // Identity.
        let audio = Audio {
            rate: 8000,
            samples: values(),
        };
        assert_eq!(resample(&audio, 8000).unwrap(), audio.samples);
        assert!(matches!(Resampler::new(0, 8000), Err(Error::Config(_))));
    }

    #[test]
    fn resampling_keeps_time_alignment() {
        let mut x = vec![0.0; 16000];
        x[8000] = 1.0;
        let out = resample(
            &Audio {
                rate: 16000,
                samples: x,
            },
            8000,
        )
        .unwrap();
        let peak = (0..out.len())
            .max_by(|&a, &b| out[a].abs().total_cmp(&out[b].abs()))
            .unwrap();
        assert_eq!(peak, 4000);
    }

    /// Centres of the HTK mel filters of `config`, straight from the formula.
    fn centres(config: &FeatureConfig) -> Vec<f64> {
        let mel = |f: f64| 2595.0 * (1.0 + f / 700.0).log10();
        let hz = |m: f64| 700.0 * (10f64.powf(m / 2595.0) - 1.0);
        let (lo, hi) = (mel(config.f_min as f64), mel(config.f_max_hz() as f64));
        (1..=config.n_mels)
            .map(|i| hz(lo + (hi - lo) * i as f64 / (config.n_mels + 1) as f64))
            .collect()
    }

    #[test]
    fn a_tone_lands_in_its_mel_band() {
        let config = FeatureConfig::default();
        let mut bank = FilterBank::new(config).unwrap();
        let c = centres(&config);
        let mut feats = Vec::new();
        for freq in [300.0, 1000.0, 2500.0] {
            let frames = bank.compute(&sine(freq, 8000, 8000, 0.5), &mut feats);
            let nearest = (0..c.len())
                .min_by(|&a, &b| (c[a] - freq).abs().total_cmp(&(c[b] - freq).abs()))
                .unwrap();
            for row in feats.chunks_exact(config.n_mels) {
                let argmax = (0..row.len())
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                    .unwrap();
                assert_eq!(argmax, nearest, "{freq} Hz, centre {}", c[nearest]);
            }
            assert_eq!(frames, 98);
        }
    }

    #[test]
    fn features_match_a_plain_computation() {
        let config = FeatureConfig {
            n_mels: 23,
            f_min: 60.0,
            f_max: Some(3800.0),
            ..FeatureConfig::default()
        };
        let mut bank = FilterBank::new(config).unwrap();
        let mut rng = rng_from_seed(3);
        let x: Vec<f32> = (0..1000).map(|_| rng.random_range(-0.5..0.5)).collect();
        let mut feats = Vec::new();
        let frames = bank.compute(&x, &mut feats);
        assert_eq!(frames, 1 + (1000 - 200) / 80);
        // Frame 3 by hand: periodic Hann, DFT of 256 points, HTK triangles, ln(· + 1e-6).
        let (win, n_fft, t) = (200, 256, 3);
        let frame: Vec<f64> = (0..win)
            .map(|i| x[t * 80 + i] as f64 * (0.5 - 0.5 * (2.0 * PI * i as f64 / win as f64).cos()))
            .collect();
        let power: Vec<f64> = (0..=n_fft / 2)
            .map(|k| {
                let w = 2.0 * PI * k as f64 / n_fft as f64;
                let re: f64 = frame
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v * (w * i as f64).cos())
                    .sum();
                let im: f64 = frame
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v * (w * i as f64).sin())
                    .sum();
                re * re + im * im
            })
            .collect();
        let mel = |f: f64| 2595.0 * (1.0 + f / 700.0).log10();
        let hz = |m: f64| 700.0 * (10f64.powf(m / 2595.0) - 1.0);
        let (lo, hi) = (mel(60.0), mel(3800.0));
        let pts: Vec<f64> = (0..25)
            .map(|i| hz(lo + (hi - lo) * i as f64 / 24.0))
            .collect();
        for m in 0..23 {
            let energy: f64 = (0..=n_fft / 2)
                .map(|k| {
                    let f = k as f64 * 8000.0 / n_fft as f64;
                    let w = ((f - pts[m]) / (pts[m + 1] - pts[m]))
                        .min((pts[m + 2] - f) / (pts[m + 2] - pts[m + 1]))
                        .max(0.0);
                    w * power[k]
                })
                .sum();
            let want = (energy + 1e-6).ln();
            let got = feats[t * 23 + m] as f64;
            assert!((got - want).abs() < 1e-3, "band {m}: {got} vs {want}");
        }
    }

    #[test]
    fn frame_counts_and_short_recordings() {
        let config = FeatureConfig::default();
        assert_eq!(
            (config.win_length(), config.hop_length(), config.fft_size()),
            (200, 80, 256)
        );
        let mut bank = FilterBank::new(config).unwrap();
        let mut feats = vec![1.0; 3];
        for (n, frames) in [
            (0, 0),
            (1, 1),
            (199, 1),
            (200, 1),
            (279, 1),
            (280, 2),
            (8000, 98),
        ] {
            assert_eq!(config.num_frames(n), frames, "{n} samples");
            assert_eq!(bank.compute(&vec![0.1; n], &mut feats), frames);
            assert_eq!(feats.len(), frames * 40);
        }
        // A short recording is zero-padded to one window.
        let short = sine(700.0, 8000, 120, 0.5);
        let mut padded = short.clone();
        padded.resize(200, 0.0);
        let mut a = Vec::new();
        bank.compute(&short, &mut a);
        bank.compute(&padded, &mut feats);
        assert_eq!(a, feats);
        // Silence is ln(1e-6).
        bank.compute(&[0.0; 300], &mut feats);
        assert!(feats.iter().all(|&v| (v - LOG_OFFSET.ln()).abs() < 1e-6));
        // 16 kHz, n_fft override.
        let wide = FeatureConfig {
            sample_rate: 16000,
            n_fft: Some(1024),
            n_mels: 80,
            ..FeatureConfig::default()
        };
        let mut bank = FilterBank::new(wide).unwrap();
        assert_eq!(bank.compute(&vec![0.1; 16000], &mut feats), 98);
        assert_eq!(feats.len(), 98 * 80);
    }

    #[test]
    fn config_validation() {
        type Change = fn(&mut FeatureConfig);
        let base = FeatureConfig::default();
        let with = |change: Change| {
            let mut c = base;
            change(&mut c);
            c
        };
        let cases: [(Change, &str); 10] = [
            (|c| c.n_mels = 128, "too many"),
            (|c| c.f_max = Some(5000.0), "Nyquist"),
            (|c| c.sample_rate = 0, "sample rate"),
            (|c| c.win_ms = 0.0, "window"),
            (|c| c.hop_ms = 0.0, "hop"),
            (|c| c.hop_ms = f32::NAN, "hop"),
            (|c| c.n_fft = Some(128), "n_fft"),
            (|c| c.n_mels = 0, "mel bands"),
            (|c| c.f_min = 4000.0, "f_min"),
            (|c| c.f_min = -1.0, "f_min"),
        ];
        for (change, word) in cases {
            match FilterBank::new(with(change)) {
                Err(Error::Config(m)) => assert!(m.contains(word), "{m}"),
                other => panic!("expected a config error with {word:?}, got {other:?}"),
            }
        }
        assert!(base.validate().is_ok());
        // Exactly Nyquist is allowed; a larger FFT makes room for more mels.
        assert!(with(|c| c.f_max = Some(4000.0)).validate().is_ok());
        assert!(with(|c| (c.n_mels, c.n_fft) = (128, Some(1024)))
            .validate()
            .is_ok());
        let mut augment = SpecAugment::default();
        assert!(augment.validate().is_ok());
        augment.max_time_fraction = 1.5;
        assert!(matches!(augment.validate(), Err(Error::Config(_))));
    }

    #[test]
    fn normalisation_gives_zero_mean_unit_std() {
        let n_mels = 5;
        let mut rng = rng_from_seed(11);
        let mut feats: Vec<f32> = (0..60 * n_mels)
            .map(|i| {
                let channel = (i % n_mels) as f32;
                channel * 3.0 - 5.0 + (channel + 0.5) * rng.random_range(-1.0..1.0)
            })
            .collect();
        // Channel 4 constant.
        feats
            .iter_mut()
            .skip(4)
            .step_by(n_mels)
            .for_each(|v| *v = -7.5);
        normalize_utterance(&mut feats, n_mels);
        for c in 0..n_mels {
            let col: Vec<f64> = feats
                .iter()
                .skip(c)
                .step_by(n_mels)
                .map(|&v| v as f64)
                .collect();
            let mean = col.iter().sum::<f64>() / col.len() as f64;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / col.len() as f64;
            assert!(mean.abs() < 1e-5, "channel {c}: mean {mean}");
            if c == 4 {
                assert!(
                    col.iter().all(|v| v.abs() < 1e-3),
                    "constant channel: {col:?}"
                );
            } else {
                assert!(
                    (var.sqrt() - 1.0).abs() < 1e-4,
                    "channel {c}: std {}",
                    var.sqrt()
                );
            }
        }
        normalize_utterance(&mut [], 3); // no frames
    }

    #[test]
    fn spec_augment_masks_what_it_draws() {
        let (frames, n_mels) = (100, 40);
        let original: Vec<f32> = (0..frames * n_mels).map(|i| 1.0 + i as f32).collect();
        let aug = SpecAugment {
            freq_masks: 2,
            freq_width: 10,
            time_masks: 3,
            time_width: 30,
            max_time_fraction: 0.2,
        };
        let mut feats = original.clone();
        let masks = aug.apply(&mut feats, n_mels, &mut rng_from_seed(5));
        assert_eq!((masks.freq.len(), masks.time.len()), (2, 3));
        assert!(masks.freq.iter().all(|r| r.len() <= 10 && r.end <= n_mels));
        // Time masks are capped at 20% of 100 frames, below time_width.
        assert!(masks.time.iter().all(|r| r.len() <= 20 && r.end <= frames));
        assert!(masks.freq.iter().chain(&masks.time).any(|r| !r.is_empty()));
        let mut zeros = 0;
        for t in 0..frames {
            for m in 0..n_mels {
                let masked = masks.freq.iter().any(|r| r.contains(&m))
                    || masks.time.iter().any(|r| r.contains(&t));
                let v = feats[t * n_mels + m];
                if masked {
                    assert_eq!(v, 0.0);
                    zeros += 1;
                } else {
                    assert_eq!(v, original[t * n_mels + m]);
                }
            }
        }
        // The masked cells are exactly the counted widths (union of the bands and runs).
        let bands = (0..n_mels)
            .filter(|m| masks.freq.iter().any(|r| r.contains(m)))
            .count();
        let runs = (0..frames)
            .filter(|t| masks.time.iter().any(|r| r.contains(t)))
            .count();
        assert_eq!(zeros, bands * frames + runs * n_mels - bands * runs);
        // Deterministic for a seed, different for another.
        let mut again = original.clone();
        assert_eq!(aug.apply(&mut again, n_mels, &mut rng_from_seed(5)), masks);
        assert_eq!(again, feats);
        let other = aug.draw(frames, n_mels, &mut rng_from_seed(6));
        assert_ne!(other, masks);
        // Zero widths mask nothing.
        let none = SpecAugment {
            freq_width: 0,
            time_width: 0,
            ..aug
        };
        let mut untouched = original.clone();
        none.apply(&mut untouched, n_mels, &mut rng_from_seed(5));
        assert_eq!(untouched, original);
    }

    #[test]
    fn spec_augment_on_tiny_inputs() {
        let aug = SpecAugment::default();
        let mut one_frame = vec![1.0; 40];
        let masks = aug.apply(&mut one_frame, 40, &mut rng_from_seed(1));
        // 20% of one frame is no frame.
        assert!(masks.time.iter().all(|r| r.is_empty()));
        let mut empty: Vec<f32> = Vec::new();
        aug.apply(&mut empty, 40, &mut rng_from_seed(1));
        // Masks wider than the channels are capped.
        let wide = SpecAugment {
            freq_width: 100,
            ..aug
        };
        let masks = wide.apply(&mut [1.0; 3 * 4], 4, &mut rng_from_seed(2));
        assert!(masks.freq.iter().all(|r| r.end <= 4));
    }

    #[test]
    fn deltas_are_the_regression_over_two_frames_each_side() {
        let (frames, n_mels) = (6, 2);
        // Band 0 a ramp (slope 1), band 1 a square.
        let c: Vec<f32> = (0..frames)
            .flat_map(|t| [t as f32, (t * t) as f32])
            .collect();
        let mut f = c.clone();
        append_deltas(&mut f, n_mels, 2);
        assert_eq!(f.len(), frames * 3 * n_mels);
        // A plain loop: the ends repeated, (Σ n (c[t+n] − c[t−n])) / 10.
        let at =
            |x: &[f32], t: isize, m: usize| x[t.clamp(0, frames as isize - 1) as usize * 2 + m];
        let delta = |x: &[f32]| -> Vec<f32> {
            (0..frames as isize)
                .flat_map(|t| {
                    (0..2).map(move |m| {
                        (at(x, t + 1, m) - at(x, t - 1, m)
                            + 2.0 * (at(x, t + 2, m) - at(x, t - 2, m)))
                            / 10.0
                    })
                })
                .collect()
        };
        let (d1, d2) = (delta(&c), delta(&delta(&c)));
        for t in 0..frames {
            let row = &f[t * 6..(t + 1) * 6];
            assert_eq!(&row[..2], &c[t * 2..t * 2 + 2]);
            for m in 0..2 {
                assert!((row[2 + m] - d1[t * 2 + m]).abs() < 1e-6, "t {t} m {m}");
                assert!((row[4 + m] - d2[t * 2 + m]).abs() < 1e-6, "t {t} m {m}");
            }
        }
        // Inside, a ramp's delta is its slope, a square's (t²) is 2t.
        assert_eq!(f[2 * 6 + 2], 1.0);
        assert!((f[2 * 6 + 3] - 4.0).abs() < 1e-6, "d(t²)/dt at t = 2 is 2t");
        // Order 0 leaves the features alone; one frame has zero deltas.
        let mut same = c.clone();
        append_deltas(&mut same, n_mels, 0);
        assert_eq!(same, c);
        let mut one = vec![3.0, -1.0];
        append_deltas(&mut one, 2, 1);
        assert_eq!(one, [3.0, -1.0, 0.0, 0.0]);
        let bad = FeatureConfig {
            deltas: 3,
            ..FeatureConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("deltas"));
        assert_eq!(
            FeatureConfig {
                deltas: 2,
                ..FeatureConfig::default()
            }
            .width(),
            120
        );
    }

    #[test]
    fn spec_augment_masks_the_same_bands_in_every_block() {
        let (frames, n_mels, width) = (50, 10, 30);
        let original: Vec<f32> = (0..frames * width).map(|i| 1.0 + i as f32).collect();
        let aug = SpecAugment {
            freq_masks: 2,
            freq_width: 4,
            time_masks: 2,
            time_width: 8,
            max_time_fraction: 0.2,
        };
        // A seed whose masks are not all empty.
        let nonempty = |m: &Masks| {
            m.freq
                .iter()
                .chain(&m.time)
                .filter(|r| !r.is_empty())
                .count()
        };
        let seed = (1..)
            .find(|&s| nonempty(&aug.draw(frames, n_mels, &mut rng_from_seed(s))) == 4)
            .unwrap();
        let mut feats = original.clone();
        let masks = aug.apply_blocks(&mut feats, n_mels, width, &mut rng_from_seed(seed));
        for t in 0..frames {
            for j in 0..width {
                let masked = masks.freq.iter().any(|r| r.contains(&(j % n_mels)))
                    || masks.time.iter().any(|r| r.contains(&t));
                let v = feats[t * width + j];
                assert_eq!(
                    v,
                    if masked { 0.0 } else { original[t * width + j] },
                    "t {t} j {j}"
                );
            }
        }
    }

    #[test]
    fn workspaces_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<FilterBank>();
        send_sync::<Resampler>();
    }
}
