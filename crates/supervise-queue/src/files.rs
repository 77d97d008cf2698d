//! Reading and writing queue files when the other side of the queue may not be trusted.
//!
//! The queue directory is shared between the host and the supervise sidecar, so either side may
//! find there what the other (or something else running as the same user) left: a symbolic link
//! to a file elsewhere, a FIFO that never ends, a file of many gigabytes, a temporary name taken
//! in advance. Reads therefore open without following a final symlink (`O_NOFOLLOW`, and
//! `O_NONBLOCK` so a FIFO cannot hang the open), check the opened file (`fstat`: a regular file
//! within the size bound) and read at most that bound. Writes go to a temporary file with a
//! random name created exclusively (`O_EXCL`), which is then renamed into place; a queue
//! subdirectory that is a symlink is refused rather than followed.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::queue::QueueError;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> QueueError + '_ {
    move |source| QueueError::Io {
        path: path.to_owned(),
        source,
    }
}

fn unsafe_file(path: &Path, message: impl Into<String>) -> QueueError {
    QueueError::Unsafe {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Open `path` for reading without following a symlink; `Ok(None)` when it does not exist.
pub(crate) fn open_no_follow(path: &Path) -> Result<Option<File>, QueueError> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(unsafe_file(
            path,
            "is a symbolic link; queue files are never followed. Remove it: only the supervise \
             sidecar and bottle write this directory",
        )),
        Err(e) => Err(io(path)(e)),
    }
}

/// The bytes of the regular file `path`, at most `limit` of them; `Ok(None)` when it does not
/// exist. A symlink, a non-regular file or a file over `limit` is refused.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, QueueError> {
    let Some(file) = open_no_follow(path)? else {
        return Ok(None);
    };
    // fstat of what was opened, not a second look at the path.
    let meta = file.metadata().map_err(io(path))?;
    if !meta.is_file() {
        return Err(unsafe_file(
            path,
            "is not a regular file; remove it: queue entries are plain JSON files",
        ));
    }
    if meta.len() > limit {
        return Err(too_big(path, meta.len(), limit));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // One byte over the bound tells a file that grew after the fstat.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io(path))?;
    if bytes.len() as u64 > limit {
        return Err(too_big(path, bytes.len() as u64, limit));
    }
    Ok(Some(bytes))
}

fn too_big(path: &Path, size: u64, limit: u64) -> QueueError {
    unsafe_file(
        path,
        format!(
            "is {size} bytes or more, over the {limit}-byte limit of a queue file; it was not read"
        ),
    )
}

/// Create `dir` (and its parents) if needed and make sure it is a real directory, not a symlink
/// to somewhere else.
pub(crate) fn real_dir(dir: &Path, create: bool) -> Result<bool, QueueError> {
    if create {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(unsafe_file(
            dir,
            "is a symbolic link; the queue's directories are never followed. Remove it",
        )),
        Ok(meta) if meta.is_dir() => Ok(true),
        Ok(_) => Err(unsafe_file(dir, "is not a directory; remove it")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => Ok(false),
        Err(e) => Err(io(dir)(e)),
    }
}

/// Files are readable by the other side of the queue (the sidecar may run as another uid than
/// the host's root).
const FILE_MODE: u32 = 0o644;

/// The directory `path` is written in, refused when it is not a real directory.
fn writable_dir(path: &Path) -> Result<(), QueueError> {
    let dir = path.parent().expect("queue files live in a directory");
    real_dir(dir, true).map(drop)
}

/// Write `bytes` to `path`, replacing what is there (a symlink there is replaced, not followed).
pub(crate) fn write_replace(path: &Path, bytes: &[u8]) -> Result<(), QueueError> {
    writable_dir(path)?;
    bottle_atomic_file::replace(path, bytes, FILE_MODE).map_err(io(path))
}

/// Write `bytes` to `path` unless something is there already (`AlreadyExists` then).
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<(), QueueError> {
    writable_dir(path)?;
    bottle_atomic_file::create_new(path, bytes, FILE_MODE).map_err(io(path))
}
