//! Writing files so that a crash never leaves a half-written file under the real name.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically.
///
/// The bytes go to `path` + `".tmp"` in the same folder, which is flushed and synced to disk
/// and then renamed over `path`; a reader sees either the old file or the whole new one.
/// On failure (a full disk, a folder that cannot be written) the temporary file is removed and
/// whatever `path` held before is left as it was.
///
/// # Errors
/// [`Error::Io`] naming the temporary file when it cannot be written, or `path` when the
/// rename fails; the message says that the previous file was kept.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] with the contents produced by `fill`, which writes into the temporary file
/// (buffered). Any error `fill` returns aborts the write as a full disk would: the temporary
/// file is removed and `path` keeps its previous contents.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = tmp_path(path);
    let kept = |source: std::io::Error| {
        let note = if path.exists() {
            format!(
                "{source}; the previous {} was kept",
                path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned()
                )
            )
        } else {
            source.to_string()
        };
        std::io::Error::new(source.kind(), note)
    };
    let written = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        fill(&mut w)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    })();
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Io {
            path: tmp,
            cause: kept(source),
        });
    }
    if let Err(source) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::Io {
            path: path.to_path_buf(),
            cause: kept(source),
        });
    }
    // Make the rename itself durable where the platform allows syncing a folder.
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// `path` with `".tmp"` appended to its file name.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("seqrnn-atomic-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A disk that fills after `room` bytes: writes fail with `StorageFull`, as ENOSPC does.
    struct FillingDisk<'a> {
        inner: &'a mut dyn Write,
        room: usize,
    }

    impl Write for FillingDisk<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "No space left on device",
                ));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.inner.write(&buf[..n])
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }

    #[test]
    fn a_disk_that_fills_during_the_write_leaves_the_previous_file() {
        let d = scratch("full");
        let p = d.join("checkpoint.safetensors");
        write_atomic(&p, b"the previous checkpoint").unwrap();
        let big = vec![7u8; 3 << 20];
        let e = write_atomic_with(&p, |w| {
            FillingDisk {
                inner: w,
                room: 1 << 20,
            }
            .write_all(&big)
        })
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("checkpoint.safetensors.tmp"), "{msg}");
        assert!(msg.contains("No space left on device"), "{msg}");
        assert!(
            msg.contains("the previous checkpoint.safetensors was kept"),
            "{msg}"
        );
        assert_eq!(std::fs::read(&p).unwrap(), b"the previous checkpoint");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_folder_is_an_error_and_writes_nothing() {
        let d = scratch("missing");
        let e = write_atomic(&d.join("nope/x"), b"x").unwrap_err();
        assert!(e.to_string().contains("nope/x.tmp"), "{e}");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
    }
}
