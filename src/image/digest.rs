//! sha256 digests of host files, remembered by their stat stamp.
//!
//! Hashing the ~30 MB that goes into the ephemeral image takes about a
//! second in a debug build; a cached lookup should not. As git's index
//! does, a file's digest is reused while its device, inode, size, mtime
//! and ctime are all unchanged (any write changes ctime). The memo lives
//! in `cache_dir/.digests`; losing it only costs time.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// What identifies one version of a host file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    pub fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            ctime_ns: meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128,
        }
    }
}

pub type Sha = [u8; 32];

pub fn sha256(data: &[u8]) -> Sha {
    Sha256::digest(data).into()
}

/// Remembered digests, keyed by host path and stamp.
#[derive(Debug, Default)]
pub struct DigestMemo {
    file: Option<PathBuf>,
    entries: BTreeMap<(PathBuf, Stamp), Sha>,
    changed: bool,
}

impl DigestMemo {
    /// The memo of `cache_dir` (empty when there is none or it is unreadable).
    pub fn load(cache_dir: &Path) -> DigestMemo {
        let file = cache_dir.join(".digests");
        let mut entries = BTreeMap::new();
        for line in std::fs::read_to_string(&file).unwrap_or_default().lines() {
            if let Some((key, sha)) = parse_line(line) {
                entries.insert(key, sha);
            }
        }
        DigestMemo {
            file: Some(file),
            entries,
            changed: false,
        }
    }

    /// The digest of `data`, read from `host` when it had `stamp`.
    pub fn digest(&mut self, host: &Path, stamp: Stamp, data: &[u8]) -> Sha {
        let key = (host.to_path_buf(), stamp);
        if let Some(sha) = self.entries.get(&key) {
            return *sha;
        }
        let sha = sha256(data);
        self.entries.insert(key, sha);
        self.changed = true;
        sha
    }

    /// Write the memo back (best effort: a lost memo only costs time).
    /// Entries for paths seen with a newer stamp are dropped.
    pub fn save(&self) {
        let Some(file) = &self.file else { return };
        if !self.changed || !file.parent().is_some_and(Path::is_dir) {
            return;
        }
        let mut newest: BTreeMap<&Path, (&Stamp, &Sha)> = BTreeMap::new();
        for ((path, stamp), sha) in &self.entries {
            let keep = newest
                .get(path.as_path())
                .is_none_or(|(s, _)| s.ctime_ns <= stamp.ctime_ns);
            if keep {
                newest.insert(path, (stamp, sha));
            }
        }
        let mut text = String::new();
        for (path, (s, sha)) in newest {
            text.push_str(&format!(
                "{} {} {} {} {} {} {}\n",
                hex::encode(sha),
                s.dev,
                s.ino,
                s.size,
                s.mtime_ns,
                s.ctime_ns,
                path.display()
            ));
        }
        let tmp = file.with_extension(format!("tmp-{}", std::process::id()));
        if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, file).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
}

fn parse_line(line: &str) -> Option<((PathBuf, Stamp), Sha)> {
    let mut parts = line.splitn(7, ' ');
    let sha: Sha = hex::decode(parts.next()?).ok()?.try_into().ok()?;
    let stamp = Stamp {
        dev: parts.next()?.parse().ok()?,
        ino: parts.next()?.parse().ok()?,
        size: parts.next()?.parse().ok()?,
        mtime_ns: parts.next()?.parse().ok()?,
        ctime_ns: parts.next()?.parse().ok()?,
    };
    Some(((PathBuf::from(parts.next()?), stamp), sha))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memo_round_trips_and_reuses_by_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("input bin");
        std::fs::write(&file, b"one").unwrap();
        let stamp = Stamp::of(&std::fs::metadata(&file).unwrap());
        let mut memo = DigestMemo::load(dir.path());
        let first = memo.digest(&file, stamp, b"one");
        assert_eq!(first, sha256(b"one"));
        memo.save();

        let mut again = DigestMemo::load(dir.path());
        // Same stamp: the remembered digest, whatever the bytes passed.
        assert_eq!(again.digest(&file, stamp, b"ignored"), first);
        assert!(!again.changed);

        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&file, b"two").unwrap();
        let new_stamp = Stamp::of(&std::fs::metadata(&file).unwrap());
        assert_ne!(new_stamp, stamp, "a write changes the stamp");
        assert_eq!(again.digest(&file, new_stamp, b"two"), sha256(b"two"));
    }

    #[test]
    fn garbage_lines_are_ignored() {
        assert!(parse_line("not a digest line").is_none());
        assert!(parse_line("").is_none());
    }
}
