//! Writes a file so that a reader (or a crash) sees the old content or the new, never a part of
//! either: the content goes into a temporary file created exclusively beside the target, is synced,
//! and is renamed over the target; then the directory is synced so the rename itself survives a
//! crash. A symbolic link at the target is replaced, never followed.
//!
//! Every place in bottle that replaces a file others read (manifests, the plugin cache, installed
//! plugins, the Claude Code download, the supervise queue) writes through here.

use std::fs::{File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Replaces `path` with `bytes`, created with permission bits `mode`.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    replace_with(path, mode, |file| file.write_all(bytes))
}

/// Creates `path` with `bytes` unless something is there already (`AlreadyExists` then, and the
/// existing file is untouched).
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let staged = stage(path, mode, |file| file.write_all(bytes))?;
    staged.persist_noclobber(path).map_err(|e| e.error)?;
    sync_dir(path)
}

/// Replaces `path` with what `write` writes into the file it is given (for content that is
/// streamed, not held in memory).
pub fn replace_with(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let staged = stage(path, mode, write)?;
    staged.persist(path).map_err(|e| e.error)?;
    sync_dir(path)
}

/// A complete, synced temporary file beside `path`, named after it so a leftover is recognisable.
fn stage(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<tempfile::NamedTempFile> {
    let dir = parent(path)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut staged = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    write(staged.as_file_mut())?;
    // The umask may have narrowed the mode at creation; the caller asked for exactly this one.
    staged
        .as_file()
        .set_permissions(Permissions::from_mode(mode))?;
    staged.as_file().sync_all()?;
    Ok(staged)
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(parent(path)?)?.sync_all()
}

fn parent(path: &Path) -> io::Result<&Path> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => Ok(dir),
        Some(_) => Ok(Path::new(".")),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no directory to write in", path.display()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn replaces_content_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.md");
        std::fs::write(&path, "old").unwrap();
        replace(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(mode_of(&path), 0o600);
        replace(&path, b"newer", 0o755).unwrap();
        assert_eq!(mode_of(&path), 0o755);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn create_new_refuses_an_existing_file_and_leaves_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.wasm");
        create_new(&path, b"first", 0o644).unwrap();
        let err = create_new(&path, b"second", 0o644).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        let path = dir.path().join("link");
        symlink(&outside, &path).unwrap();
        replace(&path, b"written", 0o644).unwrap();
        assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
        assert!(
            !std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"written");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_leftover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.bin");
        std::fs::write(&path, "old").unwrap();
        let err = replace_with(&path, 0o644, |file| {
            file.write_all(b"half")?;
            Err(io::Error::other("stream broke"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "stream broke");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(leftovers(dir.path()).is_empty());
    }
}
