//! Fetching Penn Treebank: Mikolov's `simple-examples.tgz`, unpacked and checked against the
//! published MD5 sums. Checksums ([`md5_hex`], [`verify_ptb`]) are always available; the network
//! fetch (`download_ptb`) needs the `download` feature.

use std::io::Read;
use std::path::Path;

use md5::{Digest, Md5};

use crate::error::{Error, Result};

/// Where Mikolov's archive lives (`SEQRNN_PTB_URL` overrides it, e.g. for a mirror).
pub const PTB_URL: &str = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz";

/// The three PTB files and their MD5 sums (those of the canonical archive).
pub const PTB_FILES: [(&str, &str); 3] = [
    ("ptb.train.txt", "f26c4b92c5fdc7b3f8c7cdcb991d8420"),
    ("ptb.valid.txt", "aa0affc06ff7c36e977d7cd49e3839bf"),
    ("ptb.test.txt", "8b80168b89c18661a38ef683c0dc3721"),
];

/// Lowercase hexadecimal MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks the three PTB files in `dir`: `Ok(true)` when all are present with the right sums,
/// `Ok(false)` when any is missing, an error naming the file when one differs.
pub fn verify_ptb(dir: &Path) -> Result<bool> {
    for (name, sum) in PTB_FILES {
        let path = dir.join(name);
        if !path.is_file() {
            return Ok(false);
        }
        let mut bytes = Vec::new();
        std::fs::File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|source| Error::Io {
                path: path.clone(),
                cause: source,
            })?;
        let got = md5_hex(&bytes);
        if got != sum {
            return Err(Error::Data {
                path,
                message: format!("MD5 {got} differs from the published {sum}: the file is not the canonical PTB split"),
            });
        }
    }
    Ok(true)
}

/// Fetches the archive into memory, extracts the three files into `dest` (created if needed),
/// and verifies their sums. Does nothing when `dest` already holds verified files.
#[cfg(feature = "download")]
pub fn download_ptb(dest: &Path) -> Result<()> {
    if verify_ptb(dest)? {
        return Ok(());
    }
    let url = std::env::var("SEQRNN_PTB_URL").unwrap_or_else(|_| PTB_URL.to_string());
    let offline = |why: String| {
        Error::Download(format!(
            "could not fetch {url}: {why}. Without network access, copy ptb.train.txt, \
             ptb.valid.txt and ptb.test.txt into a folder and pass it with --data DIR \
             (or set SEQRNN_DATA to the folder above a ptb/ folder)"
        ))
    };
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(120)))
            .build(),
    );
    let mut response = agent.get(&url).call().map_err(|e| offline(e.to_string()))?;
    let archive = response
        .body_mut()
        .with_config()
        .limit(100 << 20)
        .read_to_vec()
        .map_err(|e| offline(e.to_string()))?;
    std::fs::create_dir_all(dest).map_err(|source| Error::Io {
        path: dest.to_path_buf(),
        cause: source,
    })?;
    let bad = |m: String| Error::Download(format!("{url}: {m}"));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
    let mut found = 0;
    for entry in tar
        .entries()
        .map_err(|e| bad(format!("not a tar.gz archive ({e})")))?
    {
        let mut entry = entry.map_err(|e| bad(format!("damaged archive ({e})")))?;
        let path = entry
            .path()
            .map_err(|e| bad(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        if let Some((name, sum)) = PTB_FILES
            .iter()
            .find(|(n, _)| path.ends_with(&format!("data/{n}")))
        {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| bad(format!("damaged archive ({e})")))?;
            let got = md5_hex(&bytes);
            if got != *sum {
                return Err(bad(format!("{name} has MD5 {got}, expected {sum}")));
            }
            crate::io::write_atomic(&dest.join(name), &bytes)?;
            found += 1;
        }
    }
    if found != PTB_FILES.len() {
        return Err(bad(
            "the archive lacks data/ptb.{train,valid,test}.txt".into()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_known_strings() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn shared_ptb_copy_verifies() {
        let Some(dir) = crate::test_shared::shared("data/ptb") else {
            return;
        };
        assert!(verify_ptb(&dir).unwrap());
        let empty = std::env::temp_dir().join(format!("seqrnn-noptb-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        assert!(!verify_ptb(&empty).unwrap());
        std::fs::write(empty.join("ptb.train.txt"), "x").unwrap();
        std::fs::write(empty.join("ptb.valid.txt"), "x").unwrap();
        std::fs::write(empty.join("ptb.test.txt"), "x").unwrap();
        let e = verify_ptb(&empty).unwrap_err().to_string();
        assert!(e.contains("not the canonical PTB split"), "{e}");
    }
}
