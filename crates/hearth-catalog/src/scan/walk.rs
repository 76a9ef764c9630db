//! The walker: visits every entry of a library and decides what to read.

use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::mpsc::{Sender, SyncSender};

use walkdir::WalkDir;

use super::{Job, Message};

/// Stat fields stored for a file at its last scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredStat {
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
}

/// Walks `root`, sending changed files to `jobs` and everything else to
/// `messages`. Returns when the walk is complete or the writer has gone.
pub(crate) fn walk(root: &Path, known: &HashMap<Vec<u8>, StoredStat>, jobs: SyncSender<Job>, messages: Sender<Message>) {
    let mut seq = 0u64;
    let walker = WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|entry| entry.depth() == 0 || !is_hidden(entry.file_name()));

    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let message = walk_problem(root, &err);
                if messages.send(message).is_err() {
                    return;
                }
                continue;
            }
        };
        if !entry.file_type().is_file() {
            if let Some(message) = special_file_problem(root, entry.path(), entry.file_type())
                && messages.send(message).is_err()
            {
                return;
            }
            continue;
        }

        let rel_path = relative_bytes(root, entry.path());
        let metadata = match entry.metadata() {
            Ok(metadata) => metadata,
            Err(err) => {
                let reason = format!("cannot read file metadata: {err}");
                let _ = messages.send(Message::WalkProblem { rel_path, category: "unreadable", reason });
                continue;
            }
        };
        let stat = StoredStat {
            size: metadata.len(),
            mtime_ns: metadata.mtime() * 1_000_000_000 + metadata.mtime_nsec(),
            inode: metadata.ino(),
        };

        if known.get(&rel_path) == Some(&stat) {
            if messages.send(Message::Unchanged { rel_path }).is_err() {
                return;
            }
            continue;
        }

        seq += 1;
        let job = Job {
            seq,
            rel_path,
            abs_path: entry.into_path(),
            size: stat.size,
            mtime_ns: stat.mtime_ns,
            inode: stat.inode,
        };
        if messages.send(Message::Queued).is_err() || jobs.send(job).is_err() {
            return;
        }
    }
    let _ = messages.send(Message::WalkFinished);
}

/// Hidden entries (dot files such as `.DS_Store` or `.thumbnails`) are not
/// part of a household's library.
fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.as_bytes().first() == Some(&b'.')
}

/// Returns the path relative to `root` as raw bytes, so names that are not valid
/// UTF-8 survive unchanged.
pub(crate) fn relative_bytes(root: &Path, path: &Path) -> Vec<u8> {
    path.strip_prefix(root).unwrap_or(path).as_os_str().as_bytes().to_vec()
}

/// Turns a walkdir error into a problem with a reason a person can act on.
fn walk_problem(root: &Path, err: &walkdir::Error) -> Message {
    let path = err.path().unwrap_or(root);
    let rel_path = relative_bytes(root, path);

    // A cycle of symlinks (a -> b -> a) never reaches a folder, so walkdir
    // reports it as the kernel's "too many levels of symbolic links".
    if err.io_error().and_then(std::io::Error::raw_os_error) == Some(libc::ELOOP) {
        let reason = format!("symlink loop: {} is part of a cycle of symlinks; remove or retarget the links", path.display());
        return Message::WalkProblem { rel_path, category: "symlink_loop", reason };
    }
    if let Some(ancestor) = err.loop_ancestor() {
        let reason = format!(
            "symlink loop: {} points back to its ancestor {}; remove or retarget the link",
            path.display(),
            ancestor.display()
        );
        return Message::WalkProblem { rel_path, category: "symlink_loop", reason };
    }

    let is_symlink = fs::symlink_metadata(path).map(|m| m.file_type().is_symlink()).unwrap_or(false);
    let kind = err.io_error().map(std::io::Error::kind);
    if is_symlink && kind == Some(ErrorKind::NotFound) {
        let target = fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_else(|_| "?".into());
        let reason = format!("dangling symlink: {} points to {target}, which does not exist", path.display());
        return Message::WalkProblem { rel_path, category: "dangling_symlink", reason };
    }
    if kind == Some(ErrorKind::PermissionDenied) {
        let reason = format!("permission denied reading {}; give the Hearth user read access", path.display());
        return Message::WalkProblem { rel_path, category: "unreadable", reason };
    }
    if kind == Some(ErrorKind::NotFound) {
        let reason = format!("{} vanished during the scan", path.display());
        return Message::WalkProblem { rel_path, category: "vanished", reason };
    }
    let reason = format!("cannot visit {}: {err}", path.display());
    Message::WalkProblem { rel_path, category: "unreadable", reason }
}

/// Reports a FIFO, socket or device whose name looks like media, because the
/// household probably expects to see it. Other special files are skipped
/// quietly.
fn special_file_problem(root: &Path, path: &Path, file_type: std::fs::FileType) -> Option<Message> {
    use std::os::unix::fs::FileTypeExt;

    if file_type.is_dir() || hearth_media::kind_from_extension(path).is_none() {
        return None;
    }
    let what = if file_type.is_fifo() {
        "a named pipe (FIFO)"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    };
    let reason = format!("{} is {what}, not a regular file; Hearth only indexes regular files", path.display());
    Some(Message::WalkProblem { rel_path: relative_bytes(root, path), category: "not_regular_file", reason })
}
