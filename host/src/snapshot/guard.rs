//! The guard between the agent's tar stream and the host's disk.
//!
//! The archive of `~/.claude` comes out of the agent's container, so the agent decides every byte
//! of it. Extraction therefore trusts nothing in a header: only plain relative paths below
//! `.claude/` are written, only regular files and directories are created (links, devices and
//! FIFOs are skipped), every file is created fresh (0600, in 0700 directories the guard made
//! itself, so no path can lead through a link), credentials and host-provisioned parts are left
//! in the container, and the bytes are counted as they stream: an entry over [`Limits::entry`] is
//! skipped, and the extraction stops at [`Limits::total`] written bytes, [`Limits::streamed`]
//! read bytes or [`Limits::entries`] entries. Nothing is ever held in memory whole.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// Bounds of one extraction.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single file kept.
    pub entry: u64,
    /// Bytes written to disk at most (the size cap then trims below this).
    pub total: u64,
    /// Bytes read from the stream at most (skipped data counts too).
    pub streamed: u64,
    /// Entries looked at, at most.
    pub entries: usize,
}

/// What an extraction did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extracted {
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
    /// Entries left out, each with why (`path: reason`), at most [`MAX_REPORTED`].
    pub skipped: Vec<String>,
    /// How many entries were left out in all.
    pub skipped_count: usize,
    /// Whether a limit stopped the extraction before the end of the archive.
    pub stopped: Option<String>,
}

/// How many skipped entries are named in the report.
pub const MAX_REPORTED: usize = 20;

impl Extracted {
    fn skip(&mut self, path: &str, why: &str) {
        self.skipped_count += 1;
        if self.skipped.len() < MAX_REPORTED {
            self.skipped.push(format!("{path}: {why}"));
        }
    }
}

/// The directory the archive must hold everything under (the engine names the archive's top
/// entry after the copied directory).
pub const TOP: &str = ".claude";

/// Extract the `~/.claude` archive read from `stream` into `dest` (an empty directory this process
/// created). Errors are the host's own (creating a file); a malformed archive ends the extraction
/// with what was written so far and the reason in [`Extracted::stopped`].
pub fn extract(stream: impl Read, dest: &Path, limits: Limits) -> std::io::Result<Extracted> {
    let counted = Counted {
        inner: stream,
        read: 0,
        limit: limits.streamed,
    };
    let mut archive = tar::Archive::new(counted);
    let mut done = Extracted::default();
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(e) => {
            done.stopped = Some(format!("unreadable archive: {e}"));
            return Ok(done);
        }
    };
    for (seen, entry) in entries.enumerate() {
        if seen >= limits.entries {
            done.stopped = Some(format!("more than {} entries", limits.entries));
            break;
        }
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                done.stopped = Some(format!("archive ended early: {e}"));
                break;
            }
        };
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(relative) = inside_top(&raw) else {
            done.skip(&raw, "not a plain path below .claude/");
            continue;
        };
        if relative.as_os_str().is_empty() {
            continue; // `.claude/` itself
        }
        if let Some(why) = left_in_container(&relative) {
            done.skip(&raw, why);
            continue;
        }
        let kind = entry.header().entry_type();
        let target = dest.join(&relative);
        if kind.is_dir() {
            if let Err(e) = make_dirs(dest, &relative) {
                done.skip(&raw, &format!("directory not created: {e}"));
            }
            continue;
        }
        if kind != tar::EntryType::Regular && kind != tar::EntryType::Continuous {
            done.skip(
                &raw,
                "not a regular file (links, devices and FIFOs stay behind)",
            );
            continue;
        }
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > limits.entry {
            done.skip(
                &raw,
                &format!("{size} bytes, over the {} per file", limits.entry),
            );
            continue;
        }
        if done.bytes + size > limits.total {
            done.stopped = Some(format!("over {} bytes in all", limits.total));
            break;
        }
        let parent = relative.parent().unwrap_or(Path::new(""));
        if let Err(e) = make_dirs(dest, parent) {
            done.skip(&raw, &format!("directory not created: {e}"));
            continue;
        }
        let mtime = entry.header().mtime().ok();
        match write_file(&mut entry, &target, size) {
            Ok(written) => {
                done.files += 1;
                done.bytes += written;
                if let Some(mtime) = mtime {
                    set_mtime(&target, mtime);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                done.skip(&raw, "named twice in the archive");
            }
            Err(e) => {
                // A half-written file is not kept; the stream cannot be trusted past this point.
                let _ = std::fs::remove_file(&target);
                done.stopped = Some(format!("stopped at {raw}: {e}"));
                break;
            }
        }
    }
    Ok(done)
}

/// `raw` as a relative path below [`TOP`], or none when it is anything else: absolute, with `..`
/// or `.` tricks, outside `.claude/`.
fn inside_top(raw: &str) -> Option<PathBuf> {
    let mut components = Path::new(raw).components();
    match components.next()? {
        Component::Normal(first) if first == TOP => {}
        _ => return None,
    }
    let mut relative = PathBuf::new();
    for component in components {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    Some(relative)
}

/// Why a part of `~/.claude` is not copied out, if it is not.
fn left_in_container(relative: &Path) -> Option<&'static str> {
    let first = relative
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    if first == "skills" {
        // Copied from the host at every launch; the host's copy is the one that counts.
        return Some("skills come from the host at each launch");
    }
    for part in relative.components() {
        let name = part.as_os_str().to_string_lossy().to_ascii_lowercase();
        if is_credential_like(&name) {
            return Some("credentials are not kept");
        }
    }
    None
}

/// Names that hold a login or key: Claude Code's `.credentials.json` and anything named like a
/// token, secret or private key.
pub fn is_credential_like(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "credential",
        "token",
        "secret",
        "apikey",
        "api_key",
        "api-key",
        "password",
    ]
    .iter()
    .any(|word| name.contains(word))
        || [".key", ".pem", ".p12", ".pfx"]
            .iter()
            .any(|ext| name.ends_with(ext))
        || name == "auth.json"
}

/// Create `relative` below `dest` one directory at a time (0700), never following a link: every
/// component is either made here or is a directory made here before.
fn make_dirs(dest: &Path, relative: &Path) -> std::io::Result<()> {
    let mut path = dest.to_path_buf();
    for part in relative.components() {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a file of that name exists",
                ));
            }
            Err(_) => std::fs::DirBuilder::new().mode(0o700).create(&path)?,
        }
    }
    Ok(())
}

/// Write one entry's bytes to a fresh file (0600), at most `size` of them.
fn write_file(entry: &mut impl Read, target: &Path, size: u64) -> std::io::Result<u64> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc_o_nofollow())
        .open(target)?;
    std::io::copy(&mut entry.take(size), &mut file)
}

/// `O_NOFOLLOW` on Linux (the target was just checked absent; this closes the race anyway).
fn libc_o_nofollow() -> i32 {
    0o400000
}

fn set_mtime(path: &Path, seconds: u64) {
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds.min(1 << 40));
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(path) {
        let _ = file.set_modified(when);
    }
}

const STREAM_LIMIT: &str = "the archive is over its streaming bound";

/// A reader that fails once more than `limit` bytes went through it.
struct Counted<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read >= self.limit {
            return Err(std::io::Error::other(format!(
                "{STREAM_LIMIT} ({} bytes)",
                self.limit
            )));
        }
        let room = (self.limit - self.read).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        entry: 1000,
        total: 3000,
        streamed: 1 << 20,
        entries: 100,
    };

    /// A raw tar entry: a header written by hand, so paths and types a well-behaved builder
    /// refuses can be made.
    fn raw_entry(out: &mut Vec<u8>, path: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
        let mut header = tar::Header::new_old();
        {
            let bytes = header.as_mut_bytes();
            bytes[..path.len()].copy_from_slice(path.as_bytes());
            bytes[157..157 + link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_mode(0o4755);
        header.set_size(data.len() as u64);
        header.set_entry_type(kind);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    fn finish(mut out: Vec<u8>) -> Vec<u8> {
        out.extend_from_slice(&[0; 1024]);
        out
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(d) = pending.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let meta = std::fs::symlink_metadata(e.path()).unwrap();
                let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
                if meta.is_dir() {
                    pending.push(e.path());
                    found.push(format!("{rel}/"));
                } else {
                    assert!(meta.is_file(), "{rel} is not a plain file");
                    found.push(rel);
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn a_hostile_archive_writes_only_plain_files_below_the_destination() {
        let outside = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        let escape = outside.path().join("escaped");
        let mut tar = Vec::new();
        use tar::EntryType as T;
        raw_entry(&mut tar, ".claude/", T::Directory, "", b"");
        raw_entry(
            &mut tar,
            ".claude/projects/p/a.jsonl",
            T::Regular,
            "",
            b"{\"a\":1}\n",
        );
        raw_entry(
            &mut tar,
            &escape.display().to_string(),
            T::Regular,
            "",
            b"abs",
        );
        raw_entry(&mut tar, ".claude/../../escaped", T::Regular, "", b"dotdot");
        raw_entry(&mut tar, "other/file", T::Regular, "", b"outside top");
        raw_entry(&mut tar, ".claude/link", T::Symlink, "/etc", b"");
        raw_entry(
            &mut tar,
            ".claude/link/passwd",
            T::Regular,
            "",
            b"through the link",
        );
        raw_entry(&mut tar, ".claude/hard", T::Link, "/etc/shadow", b"");
        raw_entry(&mut tar, ".claude/dev", T::Char, "", b"");
        raw_entry(&mut tar, ".claude/fifo", T::Fifo, "", b"");
        raw_entry(
            &mut tar,
            ".claude/.credentials.json",
            T::Regular,
            "",
            b"{\"token\":1}",
        );
        raw_entry(
            &mut tar,
            ".claude/skills/x/SKILL.md",
            T::Regular,
            "",
            b"skill",
        );
        raw_entry(&mut tar, ".claude/giant", T::Regular, "", &[b'x'; 1001]);
        raw_entry(
            &mut tar,
            ".claude/projects/p/a.jsonl",
            T::Regular,
            "",
            b"again",
        );
        raw_entry(&mut tar, ".claude/todos/t.json", T::Regular, "", b"[]");
        let done = extract(finish(tar).as_slice(), dest.path(), LIMITS).unwrap();
        assert_eq!(
            listing(dest.path()),
            [
                "link/",
                "link/passwd",
                "projects/",
                "projects/p/",
                "projects/p/a.jsonl",
                "todos/",
                "todos/t.json"
            ],
            "{done:?}"
        );
        // `link/` is a directory the guard made, not the symlink: /etc was never written.
        assert_eq!(
            std::fs::read(dest.path().join("link/passwd")).unwrap(),
            b"through the link"
        );
        assert!(!escape.exists());
        assert_eq!(done.files, 3);
        assert_eq!(done.skipped_count, 11, "{:?}", done.skipped);
        let said = done.skipped.join("\n");
        for why in [
            "not a plain path",
            "not a regular file",
            "credentials",
            "skills",
            "per file",
            "twice",
        ] {
            assert!(said.contains(why), "{why}: {said}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dest.path().join("projects/p/a.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o7777,
            0o600,
            "no setuid or group bits from the header"
        );
        let mode = std::fs::metadata(dest.path().join("projects"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn the_byte_and_entry_bounds_stop_the_extraction() {
        let dest = tempfile::tempdir().unwrap();
        let mut tar = Vec::new();
        for n in 0..5 {
            raw_entry(
                &mut tar,
                &format!(".claude/f{n}"),
                tar::EntryType::Regular,
                "",
                &[b'y'; 900],
            );
        }
        let tar = finish(tar);
        let done = extract(tar.as_slice(), dest.path(), LIMITS).unwrap();
        assert_eq!(done.files, 3, "3 × 900 fit in 3000, the fourth does not");
        assert!(
            done.stopped.as_deref().unwrap().contains("3000"),
            "{done:?}"
        );
        let dest = tempfile::tempdir().unwrap();
        let few = Limits {
            entries: 2,
            ..LIMITS
        };
        let done = extract(tar.as_slice(), dest.path(), few).unwrap();
        assert_eq!(done.files, 2);
        assert!(done.stopped.unwrap().contains("entries"));
        // A stream longer than its bound is cut while it streams, whatever the headers say.
        let dest = tempfile::tempdir().unwrap();
        let short = Limits {
            streamed: 2048,
            ..LIMITS
        };
        let done = extract(tar.as_slice(), dest.path(), short).unwrap();
        assert!(done.files < 2, "{done:?}");
        assert!(done.stopped.unwrap().contains("streaming bound"));
    }

    #[test]
    fn an_endless_stream_is_read_only_up_to_its_bound() {
        let dest = tempfile::tempdir().unwrap();
        // The header claims 1 GiB; the stream never ends.
        let mut header = tar::Header::new_old();
        header.as_mut_bytes()[..11].copy_from_slice(b".claude/big");
        header.set_size(1 << 30);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let endless = std::io::Read::chain(header.as_bytes().as_slice(), std::io::repeat(b'z'));
        let limits = Limits {
            entry: 1 << 40,
            total: 1 << 40,
            streamed: 1 << 20,
            entries: 10,
        };
        let done = extract(endless, dest.path(), limits).unwrap();
        assert_eq!(done.files, 0);
        assert!(done.stopped.unwrap().contains("streaming bound"));
        assert!(!dest.path().join("big").exists(), "a cut file is not kept");
    }

    #[test]
    fn credential_names_are_recognised() {
        for name in [
            ".credentials.json",
            "oauth_token",
            "id_ed25519.key",
            "client.pem",
            "auth.json",
            "MY_SECRET",
        ] {
            assert!(is_credential_like(name), "{name}");
        }
        for name in ["settings.json", "projects", "todos", "a.jsonl", "statsig"] {
            assert!(!is_credential_like(name), "{name}");
        }
    }
}
