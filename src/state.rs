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
    /// Failed writes by file name, and whether the last write of each failed, when the
    /// exporter's metrics are attached.
    write_errors: Option<(prometheus::IntCounterVec, prometheus::IntGaugeVec)>,
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
            write_errors: None,
        })
    }

    /// Counts every failed write in `errors` and keeps `failing` at 1 from a failed write of a
    /// file to the next successful one (both labelled by file name). The series of the known
    /// `files` (the names the checks write) are created at once so that they exist from the
    /// first scrape.
    pub fn counting_write_errors(
        mut self,
        errors: prometheus::IntCounterVec,
        failing: prometheus::IntGaugeVec,
        files: &[&str],
    ) -> StateDir {
        for f in files {
            errors.with_label_values(&[f]);
            failing.with_label_values(&[f]).set(0);
        }
        self.write_errors = Some((errors, failing));
        self
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
        if let Some((errors, failing)) = &self.write_errors {
            if result.is_err() {
                errors.with_label_values(&[name]).inc();
            }
            failing
                .with_label_values(&[name])
                .set(i64::from(result.is_err()));
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

    const FILES: [&str; 2] = ["in-flight.json", "ledger.json"];

    #[test]
    fn failed_writes_are_counted_by_file_and_keep_the_old_content() {
        let d = tempdir("count");
        let counter = prometheus::IntCounterVec::new(
            prometheus::Opts::new("errors_total", "test"),
            &["file"],
        )
        .unwrap();
        let failing =
            prometheus::IntGaugeVec::new(prometheus::Opts::new("failing", "test"), &["file"])
                .unwrap();
        let s = StateDir::open(&d).unwrap().counting_write_errors(
            counter.clone(),
            failing.clone(),
            &FILES,
        );
        for f in FILES {
            assert_eq!(counter.with_label_values(&[f]).get(), 0, "{f} exists at 0");
        }
        s.write_atomic(FILES[1], b"old").unwrap();
        // A directory where the temporary file should go makes its creation fail (for root too).
        let blocker = d.join(format!(".{}.tmp-{}", FILES[1], std::process::id()));
        fs::create_dir(&blocker).unwrap();
        let e = s.write_atomic(FILES[1], b"new").unwrap_err().to_string();
        assert!(e.contains("create failed"), "{e}");
        assert_eq!(counter.with_label_values(&[FILES[1]]).get(), 1);
        assert_eq!(failing.with_label_values(&[FILES[1]]).get(), 1);
        assert_eq!(counter.with_label_values(&[FILES[0]]).get(), 0);
        assert_eq!(failing.with_label_values(&[FILES[0]]).get(), 0);
        assert_eq!(s.read(FILES[1]).unwrap().as_deref(), Some(&b"old"[..]));
        // The fault goes away: the next write succeeds and clears the gauge, not the counter.
        fs::remove_dir(&blocker).unwrap();
        s.write_atomic(FILES[1], b"new").unwrap();
        assert_eq!(failing.with_label_values(&[FILES[1]]).get(), 0);
        assert_eq!(counter.with_label_values(&[FILES[1]]).get(), 1);
        assert_eq!(s.read(FILES[1]).unwrap().as_deref(), Some(&b"new"[..]));
        fs::remove_dir_all(&d).unwrap();
    }
}
