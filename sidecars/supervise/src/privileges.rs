//! Running as the owner of the queue directory.
//!
//! The host creates the queue directory as the operator's user and mounts it into the sidecar.
//! Files the sidecar writes there must stay readable, and the directories it creates writable, by
//! that user; so the program starts as root and, before anything else, becomes the directory's
//! owner. When the owner is root (rootless Docker, Docker Desktop, a root host user) or the
//! program does not start as root, nothing changes.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The switch to the queue's owner failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// The directory's owner could not be read.
    #[error("{path}: {source}")]
    Stat {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `setgroups`, `setgid` or `setuid` call failed.
    #[error("cannot become uid {uid} gid {gid}, the owner of {path} ({call}): {source}")]
    Switch {
        /// The directory.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// Its group.
        gid: u32,
        /// The call that failed.
        call: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// When running as root, become the owner (user, group, no supplementary groups) of `dir`, unless
/// that is root too. Returns the new `(uid, gid)`, or `None` when nothing changed.
///
/// Call it before any thread is started: the switch applies to the calling thread's process.
pub fn adopt_owner(dir: &Path) -> Result<Option<(u32, u32)>, PrivilegeError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let meta = std::fs::metadata(dir).map_err(|source| PrivilegeError::Stat {
        path: dir.to_owned(),
        source,
    })?;
    let (uid, gid) = (meta.uid(), meta.gid());
    if uid == 0 {
        return Ok(None);
    }
    let fail = |call: &'static str| PrivilegeError::Switch {
        path: dir.to_owned(),
        uid,
        gid,
        call,
        source: std::io::Error::last_os_error(),
    };
    // SAFETY: plain system calls on integers (and an empty group list); failure is reported
    // through the return value and errno, read at once by `fail`. Group first, while still root.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0 {
            return Err(fail("setgroups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(fail("setgid"));
        }
        if libc::setuid(uid) != 0 {
            return Err(fail("setuid"));
        }
    }
    Ok(Some((uid, gid)))
}
