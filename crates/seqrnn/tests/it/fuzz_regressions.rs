//! The fuzz harnesses of `fuzz/` on the stable toolchain: every committed seed and every input
//! that once made a reader fail (`fuzz/regressions/TARGET/`) is replayed, then a short burst of
//! seeded mutations of the seeds (about a second per reader) checks that no reader panics.
//! The long runs are `fuzz/run.sh` (cargo-fuzz, nightly); their figures are in
//! `docs/reliability.md`.

#[path = "../../../../fuzz/harness.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/KIND/TARGET`, sorted (none when the folder is absent).
fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => return Vec::new(),
    };
    files.sort();
    files
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn seeds_and_past_failures_replay_without_panic() {
    let mut n = 0;
    for t in harness::TARGETS {
        for kind in ["seeds", "regressions"] {
            for (path, bytes) in inputs(kind, t) {
                eprintln!("{t}: {}", path.display());
                harness::run_target(t, &bytes);
                n += 1;
            }
        }
    }
    assert!(n > 0, "no seeds found under {}", fuzz_dir().display());
}

/// xorshift64*: a small deterministic generator for the mutations.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four random edits: bit flips, byte changes to interesting values, insertions,
/// deletions, truncation, duplication of a slice.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = [0, 0xff, 0x7f, 0x80, b'\n', b',', b'"', b'\\', b'{', b'9'][rng.below(10)];
            }
            2 => {
                let i = rng.below(len + 1);
                b.insert(i, rng.next() as u8);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(16)).min(len);
                b.drain(i..j);
            }
            4 => b.truncate(rng.below(len + 1)),
            _ if len > 0 => {
                let i = rng.below(len);
                let j = (i + 1 + rng.below(32)).min(len);
                let piece = b[i..j].to_vec();
                let k = rng.below(len + 1);
                b.splice(k..k, piece);
            }
            _ => b.push(rng.next() as u8),
        }
    }
    b
}

#[test]
fn mutated_seeds_never_panic() {
    for t in harness::TARGETS {
        let seeds = inputs("seeds", t);
        assert!(!seeds.is_empty(), "no seeds for {t}");
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ t.len() as u64);
        let t0 = Instant::now();
        let mut runs = 0;
        while runs < 3000 && t0.elapsed() < Duration::from_millis(800) {
            let (_, seed) = &seeds[rng.below(seeds.len())];
            let input = mutate(&mut rng, seed);
            let caught = std::panic::catch_unwind(|| harness::run_target(t, &input));
            if caught.is_err() {
                let keep = std::env::temp_dir().join(format!("seqrnn-fuzz-{t}-crash"));
                std::fs::write(&keep, &input).unwrap();
                panic!(
                    "{t} panicked on a mutated seed, saved as {}: copy it into fuzz/regressions/{t}/",
                    keep.display()
                );
            }
            runs += 1;
        }
        eprintln!("{t}: {runs} mutated inputs");
    }
}
