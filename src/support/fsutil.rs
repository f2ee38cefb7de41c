//! Files mlops-tui writes go through [`write_atomic`]: a crash leaves the old file or the new one, never
//! half of either.

use std::io::Write;
use std::path::Path;

/// Whether an I/O error says the file system is full (`ENOSPC`, or `EDQUOT` for a user's quota).
pub fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(28 | 122))
}

/// The mount point of the file system holding `path` (the highest ancestor on the same device), for
/// telling people where to free space. `path` itself when nothing can be read.
pub fn mount_point(path: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let start = std::iter::successors(Some(path), |p| p.parent()).find(|p| p.exists());
    let Some(start) = start else {
        return path.to_path_buf();
    };
    let Ok(dev) = std::fs::metadata(start).map(|m| m.dev()) else {
        return start.to_path_buf();
    };
    let mut top = start;
    while let Some(parent) = top.parent() {
        match std::fs::metadata(parent) {
            Ok(m) if m.dev() == dev => top = parent,
            _ => break,
        }
    }
    top.to_path_buf()
}

/// Writes `bytes` to a temporary file beside `path`, fsyncs it, renames it over `path` and fsyncs the
/// directory so the rename itself survives a power cut. The temporary file is always a new one
/// (`O_EXCL`, which never follows a link): a container that planted a link under its name in its
/// own directory gets the link removed, never a host file written through it; and the rename
/// replaces a link at `path` instead of writing to its target.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The user and group a training container runs as, numeric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// `nobody`: who a container runs as when mlops-tui runs as root.
    pub const NOBODY: Owner = Owner {
        uid: 65534,
        gid: 65534,
    };

    /// Who a container writing into `dir` (just created by this process, so owned by it) runs as:
    /// this process's own user, so that the operator can read and remove what the container wrote;
    /// `nobody` when that user is root, so that training code never runs as root.
    pub fn for_container(dir: &Path) -> std::io::Result<Owner> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(dir)?;
        Ok(if meta.uid() == 0 {
            Owner::NOBODY
        } else {
            Owner {
                uid: meta.uid(),
                gid: meta.gid(),
            }
        })
    }

    /// `uid:gid`, as Docker takes a container's user.
    pub fn spec(self) -> String {
        format!("{}:{}", self.uid, self.gid)
    }
}

/// Makes `path` a directory only `owner` (and root) can use: mode 0700, handed to `owner` when it is
/// not already this process's user (only root can, and only root needs to). Nobody else can read a
/// model or a checkpoint through it, and the operator can remove it and everything in it.
///
/// `path` may lie in a directory a container wrote (`/mlops` before a move to another engine): a
/// link or a file planted under its name is removed and a real directory made, so the mode and the
/// owner are never set on whatever a link points at (`checkpoints -> /etc`).
pub fn make_private_dir(path: &Path, owner: Owner) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            std::fs::remove_file(path)?;
            std::fs::create_dir(path)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(path)?,
        Err(e) => return Err(e),
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    let meta = std::fs::symlink_metadata(path)?;
    if (meta.uid(), meta.gid()) != (owner.uid, owner.gid) {
        std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))?;
    }
    Ok(())
}

/// The bytes the files under `dir` hold (their length, so a sparse file counts in full), without
/// following symbolic links. Entries that vanish or cannot be read while walking count as empty: the
/// caller measures again soon. Blocking: call it off the async threads.
pub fn tree_size(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                todo.push(entry.path());
            } else if meta.is_file() {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_link_at_the_temporary_name_is_not_written_through() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let tmp = d
            .path()
            .join(format!(".params.json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join("params.json")).unwrap();
        write_atomic(&d.path().join("params.json"), b"{}").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(
            std::fs::read_to_string(d.path().join("params.json")).unwrap(),
            "{}"
        );
        assert!(
            !std::fs::symlink_metadata(d.path().join("params.json"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_link_planted_as_a_private_dir_is_replaced_never_followed() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::set_permissions(outside.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let at = d.path().join("checkpoints");
        std::os::unix::fs::symlink(outside.path(), &at).unwrap();
        let owner = Owner::for_container(d.path()).unwrap();
        make_private_dir(&at, owner).unwrap();
        let meta = std::fs::symlink_metadata(&at).unwrap();
        assert!(meta.is_dir(), "a real directory now");
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        let theirs = std::fs::metadata(outside.path()).unwrap();
        assert_eq!(
            theirs.permissions().mode() & 0o777,
            0o755,
            "the target is untouched"
        );
    }

    #[test]
    fn tree_size_counts_nested_files_and_not_links() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir_all(d.path().join("x/y")).unwrap();
        std::fs::write(d.path().join("x/y/b"), vec![0u8; 24]).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("big"), vec![0u8; 1 << 20]).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("link")).unwrap();
        assert_eq!(tree_size(d.path()), 1024);
        assert_eq!(tree_size(&d.path().join("missing")), 0);
    }

    #[test]
    fn private_dir_is_0700_and_the_container_never_root() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let owner = Owner::for_container(d.path()).unwrap();
        assert_ne!(owner.uid, 0);
        let me = std::fs::metadata(d.path()).unwrap();
        let p = d.path().join("a/b");
        make_private_dir(&p, owner).unwrap();
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        if me.uid() != 0 {
            assert_eq!(
                owner,
                Owner {
                    uid: me.uid(),
                    gid: me.gid()
                }
            );
        } else {
            assert_eq!((meta.uid(), owner), (65534, Owner::NOBODY));
        }
    }

    #[test]
    fn replaces_whole_file_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/best.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
