//! The state directory: what must survive a restart (canaries in flight, the report ledger).
//!
//! Files are replaced atomically: written to a temporary file in the same directory, flushed
//! with fsync, renamed over the old file, and the directory itself fsynced, so a crash leaves
//! either the old or the new content and never a torn file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state directory {path}: cannot create it: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error(
        "state directory {path} is not writable ({source}); set exporter.state_dir to a directory this user can write"
    )]
    NotWritable { path: PathBuf, source: io::Error },
    #[error("state file {path}: {op} failed: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
    #[error("state file name {0:?} is not a plain file name")]
    BadName(String),
}

#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens (creating if needed) the directory and proves it is writable by writing, syncing
    /// and removing a probe file. Refuses with a clear error otherwise.
    pub fn open(root: &Path) -> Result<StateDir, StateError> {
        fs::create_dir_all(root).map_err(|source| StateError::Create {
            path: root.to_path_buf(),
            source,
        })?;
        static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let probe = root.join(format!(".write-probe-{}-{n}", std::process::id()));
        let res = (|| {
            let mut f = File::create(&probe)?;
            f.write_all(b"probe")?;
            f.sync_all()?;
            fs::remove_file(&probe)
        })();
        res.map_err(|source| StateError::NotWritable {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(StateDir {
            root: root.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    fn file(&self, name: &str) -> Result<PathBuf, StateError> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(StateError::BadName(name.to_string()));
        }
        Ok(self.root.join(name))
    }

    /// Reads a state file; `Ok(None)` when it does not exist yet.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.file(name)?;
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io {
                path,
                op: "read",
                source,
            }),
        }
    }

    /// Replaces a state file atomically (temp file, fsync, rename, fsync of the directory).
    pub fn write_atomic(&self, name: &str, data: &[u8]) -> Result<(), StateError> {
        let path = self.file(name)?;
        let tmp = self
            .root
            .join(format!(".{name}.tmp-{}", std::process::id()));
        let io = |op, source| StateError::Io {
            path: path.clone(),
            op,
            source,
        };
        let result = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)
                .map_err(|e| io("create", e))?;
            f.write_all(data).map_err(|e| io("write", e))?;
            f.sync_all().map_err(|e| io("fsync", e))?;
            drop(f);
            fs::rename(&tmp, &path).map_err(|e| io("rename", e))?;
            File::open(&self.root)
                .and_then(|d| d.sync_all())
                .map_err(|e| io("fsync directory", e))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("dx-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn writes_atomically_and_reads_back() {
        let d = tempdir("rw");
        let s = StateDir::open(&d).unwrap();
        assert_eq!(s.read("ledger.json").unwrap(), None);
        s.write_atomic("ledger.json", b"one").unwrap();
        s.write_atomic("ledger.json", b"two").unwrap();
        assert_eq!(s.read("ledger.json").unwrap().as_deref(), Some(&b"two"[..]));
        let leftovers: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("ledger.json")]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_bad_names() {
        let d = tempdir("names");
        let s = StateDir::open(&d).unwrap();
        assert!(matches!(
            s.write_atomic("../x", b""),
            Err(StateError::BadName(_))
        ));
        assert!(matches!(
            s.write_atomic(".hidden", b""),
            Err(StateError::BadName(_))
        ));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn unwritable_directory_is_refused_with_a_clear_error() {
        // A path below a regular file can never be created, whoever runs the test (root too).
        let d = tempdir("file");
        fs::create_dir_all(&d).unwrap();
        let f = d.join("plain-file");
        fs::write(&f, b"x").unwrap();
        let e = StateDir::open(&f.join("state")).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "state directory {}/state: cannot create it",
                f.display()
            )),
            "{e}"
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
