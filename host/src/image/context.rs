//! Build contexts as deterministic tar archives: sorted entries, fixed times and owners, so equal
//! contents give equal digests and image tags.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// One entry of a context.
#[derive(Debug, Clone)]
pub enum Entry {
    /// Bytes in memory, in the archive and in the digest.
    Bytes {
        path: String,
        mode: u32,
        bytes: Vec<u8>,
    },
    /// A file read when archiving; not in the digest (something else in the digest stands for it).
    Lazy {
        path: String,
        mode: u32,
        source: PathBuf,
    },
    /// A symbolic link.
    Link { path: String, target: String },
    /// Only in the digest.
    DigestOnly { path: String, bytes: Vec<u8> },
}

impl Entry {
    fn path(&self) -> &str {
        match self {
            Entry::Bytes { path, .. }
            | Entry::Lazy { path, .. }
            | Entry::Link { path, .. }
            | Entry::DigestOnly { path, .. } => path,
        }
    }
}

/// A build context.
#[derive(Debug, Clone, Default)]
pub struct Context {
    entries: Vec<Entry>,
}

impl Context {
    /// The embedded `docker/<name>/` context with the binaries it needs, or `None`.
    pub fn embedded(name: &str) -> Option<Context> {
        if !crate::assets::has_context(name) {
            return None;
        }
        let mut context = Context::default();
        for (image, path, bytes) in crate::assets::CONTEXTS {
            if *image == name {
                context.add(path, bytes.to_vec(), 0o644);
            }
        }
        for (path, bytes) in crate::assets::context_binaries(name) {
            context.add(path, bytes.to_vec(), 0o755);
        }
        Some(context)
    }

    /// Every file and link under `dir` (symbolic links are kept as links), under `prefix/` when given.
    pub fn from_dir(dir: &Path, prefix: Option<&str>) -> std::io::Result<Context> {
        let mut context = Context::default();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            for entry in std::fs::read_dir(&current)? {
                let entry = entry?;
                let path = entry.path();
                let relative = path
                    .strip_prefix(dir)
                    .expect("walked from dir")
                    .to_string_lossy()
                    .into_owned();
                let name = prefix.map_or_else(|| relative.clone(), |p| format!("{p}/{relative}"));
                let kind = entry.file_type()?;
                if kind.is_symlink() {
                    let target = std::fs::read_link(&path)?.to_string_lossy().into_owned();
                    context.entries.push(Entry::Link { path: name, target });
                } else if kind.is_dir() {
                    pending.push(path);
                } else if kind.is_file() {
                    use std::os::unix::fs::PermissionsExt;
                    let mode = entry.metadata()?.permissions().mode() & 0o7777;
                    context.add(&name, std::fs::read(&path)?, mode);
                }
            }
        }
        Ok(context)
    }

    /// Add a file.
    pub fn add(&mut self, path: &str, bytes: Vec<u8>, mode: u32) {
        self.entries.push(Entry::Bytes {
            path: path.to_owned(),
            mode,
            bytes,
        });
    }

    /// Add a file read only when archiving.
    pub fn add_lazy(&mut self, path: &str, source: PathBuf, mode: u32) {
        self.entries.push(Entry::Lazy {
            path: path.to_owned(),
            mode,
            source,
        });
    }

    /// Add bytes that count in the digest only.
    pub fn add_digest_only(&mut self, path: &str, bytes: Vec<u8>) {
        self.entries.push(Entry::DigestOnly {
            path: path.to_owned(),
            bytes,
        });
    }

    /// The first 12 hex digits of the SHA-256 over every entry's path, mode and contents.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        for entry in self.sorted() {
            hasher.update(entry.path().as_bytes());
            hasher.update([0]);
            match entry {
                Entry::Bytes { mode, bytes, .. } => {
                    hasher.update(mode.to_le_bytes());
                    hasher.update((bytes.len() as u64).to_le_bytes());
                    hasher.update(bytes);
                }
                Entry::Link { target, .. } => hasher.update(target.as_bytes()),
                Entry::DigestOnly { bytes, .. } => hasher.update(bytes),
                Entry::Lazy { .. } => {}
            }
        }
        hex::encode(hasher.finalize())[..12].to_owned()
    }

    /// The context as a tar archive.
    pub fn tar(&self) -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        for entry in self.sorted() {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            match entry {
                Entry::Bytes { path, mode, bytes } => {
                    header.set_mode(*mode);
                    header.set_size(bytes.len() as u64);
                    builder.append_data(&mut header, path, bytes.as_slice())?;
                }
                Entry::Lazy { path, mode, source } => {
                    let bytes = std::fs::read(source)?;
                    header.set_mode(*mode);
                    header.set_size(bytes.len() as u64);
                    builder.append_data(&mut header, path, bytes.as_slice())?;
                }
                Entry::Link { path, target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target)?;
                }
                Entry::DigestOnly { .. } => {}
            }
        }
        builder.into_inner()
    }

    fn sorted(&self) -> Vec<&Entry> {
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.path().cmp(b.path()));
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_contents_give_equal_digests_in_any_order() {
        let mut a = Context::default();
        a.add("Dockerfile", b"FROM x".to_vec(), 0o644);
        a.add("bin", b"\x7fELF".to_vec(), 0o755);
        let mut b = Context::default();
        b.add("bin", b"\x7fELF".to_vec(), 0o755);
        b.add("Dockerfile", b"FROM x".to_vec(), 0o644);
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.tar().unwrap(), b.tar().unwrap());
        b.add_digest_only("claude-code/VERSION", b"2.1.0".to_vec());
        assert_ne!(
            a.digest(),
            b.digest(),
            "a digest-only entry changes the tag"
        );
        assert_eq!(a.tar().unwrap(), b.tar().unwrap(), "but not the archive");
        let mut c = a.clone();
        c.add("Dockerfile2", Vec::new(), 0o644);
        assert_ne!(a.digest(), c.digest());
    }

    #[test]
    fn every_embedded_context_has_a_dockerfile() {
        for name in ["agent", "egress-proxy", "supervise"] {
            let context =
                Context::embedded(name).unwrap_or_else(|| panic!("docker/{name}/ is embedded"));
            assert!(
                context.entries.iter().any(|e| e.path() == "Dockerfile"),
                "{name}"
            );
        }
        let proxy = Context::embedded("egress-proxy").unwrap();
        assert!(
            proxy
                .entries
                .iter()
                .any(|e| e.path() == "bottle-egress-proxy"),
            "the static binary is in its context"
        );
        let supervise = Context::embedded("supervise").unwrap();
        assert!(
            supervise
                .entries
                .iter()
                .any(|e| e.path() == "bottle-supervise"),
            "the static binary is in its context"
        );
    }
}
