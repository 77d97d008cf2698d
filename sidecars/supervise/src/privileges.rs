//! Never serving as root.
//!
//! The host creates the queue directory as the operator's user and mounts it into the sidecar.
//! Files the sidecar writes there must stay readable, and the directories it creates writable, by
//! that user; so the program starts as root and, before anything else, becomes the directory's
//! owner. When that owner is root too (the operator runs bottle as root, rootless Docker, Docker
//! Desktop), the queue is handed to [`FALLBACK_UID`]/[`FALLBACK_GID`] (root on the host still
//! reads and writes it) and the program becomes that user. Either way the program serves as a
//! non-root user that cannot become root again; if it cannot get there, it refuses to run.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The user the sidecar serves as when the queue directory belongs to root (the usual
/// unprivileged "nonroot" id of distroless images; nothing else in the container uses it).
pub const FALLBACK_UID: u32 = 65532;

/// The group of [`FALLBACK_UID`].
pub const FALLBACK_GID: u32 = 65532;

/// The switch away from root failed; the program must not serve.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// The directory's owner could not be read, or the directory could not be handed over.
    #[error("{path}: {source}")]
    Io {
        /// The directory or file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A `setgroups`, `setgid` or `setuid` call failed.
    #[error("cannot become uid {uid} gid {gid} for {path} ({call}): {source}")]
    Switch {
        /// The directory.
        path: PathBuf,
        /// The user to become.
        uid: u32,
        /// Its group.
        gid: u32,
        /// The call that failed.
        call: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Still root after the switch (or root regained): serving as root is refused.
    #[error(
        "still running as root (uid {uid}, euid {euid}) after dropping privileges; refusing to \
         serve as root. Run the sidecar's image as it is built (it drops root by itself), or as \
         a non-root user that owns {path}"
    )]
    StillRoot {
        /// The queue directory.
        path: PathBuf,
        /// The real uid.
        uid: u32,
        /// The effective uid.
        euid: u32,
    },
}

/// When running as root, become the owner (user, group, no supplementary groups) of `dir`, or
/// the fallback user after handing `dir` to it when the owner is root. Returns the new
/// `(uid, gid)`, or `None` when the program did not start as root. Either way it then checks that
/// it is not root and cannot become root again.
///
/// Call it before any thread is started: the switch applies to the calling thread's process.
pub fn drop_root(dir: &Path) -> Result<Option<(u32, u32)>, PrivilegeError> {
    let switched = if euid() == 0 {
        let (uid, gid) = owner(dir)?;
        let (uid, gid) = if uid == 0 {
            hand_over(dir, FALLBACK_UID, FALLBACK_GID)?;
            (FALLBACK_UID, FALLBACK_GID)
        } else {
            (uid, gid)
        };
        become_user(dir, uid, gid)?;
        Some((uid, gid))
    } else {
        None
    };
    refuse_root(dir)?;
    Ok(switched)
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn owner(dir: &Path) -> Result<(u32, u32), PrivilegeError> {
    let meta = std::fs::metadata(dir).map_err(|source| PrivilegeError::Io {
        path: dir.to_owned(),
        source,
    })?;
    Ok((meta.uid(), meta.gid()))
}

/// Give `dir` and everything in it (a resumed bottle's queue has files) to `uid:gid`, without
/// following symlinks.
fn hand_over(dir: &Path, uid: u32, gid: u32) -> Result<(), PrivilegeError> {
    let fail = |path: &Path| {
        let path = path.to_owned();
        move |source| PrivilegeError::Io { path, source }
    };
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).map_err(fail(dir))?;
    let meta = std::fs::symlink_metadata(dir).map_err(fail(dir))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(dir).map_err(fail(dir))? {
            let path = entry.map_err(fail(dir))?.path();
            hand_over(&path, uid, gid)?;
        }
    }
    Ok(())
}

fn become_user(dir: &Path, uid: u32, gid: u32) -> Result<(), PrivilegeError> {
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
    Ok(())
}

/// Refuse to go on as root, or as a user that could become root again.
fn refuse_root(dir: &Path) -> Result<(), PrivilegeError> {
    // SAFETY: getuid/geteuid have no preconditions; setuid(0) only succeeds for a process that
    // may still become root, which is exactly what this detects (and then refuses to serve).
    let (uid, euid, regained) = unsafe {
        let regained = libc::getuid() != 0 && libc::setuid(0) == 0;
        (libc::getuid(), libc::geteuid(), regained)
    };
    if uid == 0 || euid == 0 || regained {
        return Err(PrivilegeError::StillRoot {
            path: dir.to_owned(),
            uid,
            euid,
        });
    }
    Ok(())
}
