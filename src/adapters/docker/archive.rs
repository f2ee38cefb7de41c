//! Tar streams between this machine and an engine that does not share its disk.
//!
//! Packing runs on a blocking thread and hands the archive over in chunks through a bounded channel,
//! so a workspace of any size is uploaded in bounded memory. Unpacking reads what the container sent:
//! the container is untrusted, so nothing it sends may land outside the target directory (no `..`, no
//! absolute paths, no writing through a symlink, whether the symlink came in the archive or was already
//! on disk), and only regular files and directories are made (symlinks, hard links and device files
//! are skipped).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

/// Bytes per chunk handed between the tar thread and the HTTP body.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight: the memory a transfer holds is about `CHUNK * IN_FLIGHT`.
const IN_FLIGHT: usize = 8;

/// Who owns the uploaded files inside the container (`TrainSpec.user`), so that the unprivileged
/// user can write its workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u64,
    pub gid: u64,
}

impl Owner {
    /// Reads `uid:gid`.
    pub fn parse(user: &str) -> Option<Owner> {
        let (uid, gid) = user.split_once(':')?;
        Some(Owner {
            uid: uid.parse().ok()?,
            gid: gid.parse().ok()?,
        })
    }
}

/// A tar stream of the host directories in `dirs`, each under its own top-level name (`("workspace",
/// /host/ws)` puts `/host/ws/train.py` at `workspace/train.py`), every entry owned by `owner`, modes
/// and mtimes kept. Symlinks are sent as symlinks (they resolve inside the container); sockets, fifos
/// and devices are left out.
pub fn pack(
    dirs: Vec<(String, PathBuf)>,
    owner: Owner,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut builder = tar::Builder::new(ChunkWriter::new(tx.clone()));
        builder.follow_symlinks(false);
        let result = dirs
            .iter()
            .try_for_each(|(name, dir)| append_tree(&mut builder, Path::new(name), dir, owner))
            .and_then(|()| builder.into_inner())
            .and_then(|mut w| w.flush());
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    tokio_stream(rx)
}

fn tokio_stream<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Appends `dir` (recursively) under the archive path `name`.
fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &Path,
    dir: &Path,
    owner: Owner,
) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    let mut header = header_for(&meta, owner);
    if meta.is_dir() {
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        builder.append_data(&mut header, name, io::empty())?;
        let mut children: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            append_tree(builder, &name.join(child.file_name()), &child.path(), owner)?;
        }
    } else if meta.is_file() {
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, File::open(dir)?)?;
    } else if meta.file_type().is_symlink() {
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, name, fs::read_link(dir)?)?;
    }
    Ok(())
}

fn header_for(meta: &fs::Metadata, owner: Owner) -> tar::Header {
    use std::os::unix::fs::MetadataExt;
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    header.set_uid(owner.uid);
    header.set_gid(owner.gid);
    header.set_mode(meta.mode() & 0o777);
    let _ = header.set_username("");
    let _ = header.set_groupname("");
    header
}

/// A `Write` that cuts what is written into chunks and sends them; blocks while the channel is full.
struct ChunkWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn new(tx: mpsc::Sender<Result<Bytes, io::Error>>) -> Self {
        ChunkWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload was abandoned"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// A `Read` over chunks received from an async stream; blocks until the next chunk comes.
pub struct ChunkReader {
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
    current: Bytes,
}

impl ChunkReader {
    /// A reader of `stream`, fed from a task on the current runtime.
    pub fn spawn<S, E>(stream: S) -> ChunkReader
    where
        S: Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: std::fmt::Display + Send,
    {
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        tokio::spawn(async move {
            let mut stream = Box::pin(stream);
            while let Some(item) = stream.next().await {
                let item = item.map_err(|e| io::Error::other(e.to_string()));
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    break;
                }
            }
        });
        ChunkReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// What [`unpack`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// Bytes of regular files written.
    pub bytes: u64,
    pub files: u64,
    /// Entries refused: symlinks, links, devices, paths that would leave the target.
    pub skipped: u64,
    /// The first file that would have passed the cap (its path below the top directory, its size):
    /// unpacking stopped there, and neither it nor anything after it was written.
    pub left: Option<(String, u64)>,
}

/// Unpacks an archive of one directory (as the engine sends `GET /containers/{id}/archive` of a
/// directory: its own name first, then its contents) into `to`, made if missing. The top-level name is
/// dropped, so `checkpoints/epoch-3.pt` lands at `to/epoch-3.pt`. Existing files of the same names are
/// replaced; an existing symlink on the way is replaced by a real directory or file, never followed.
/// At most `cap` bytes of files are written: the archive is read no further than the first file
/// that does not fit (sizes are in the entries' headers, so nothing of it lands).
pub fn unpack(reader: impl Read, to: &Path, cap: u64) -> io::Result<Unpacked> {
    fs::create_dir_all(to)?;
    let mut done = Unpacked::default();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let rel = match place(&entry.path_bytes()) {
            Place::Top => continue,
            Place::Inside(rel) => rel,
            Place::Refused => {
                done.skipped += 1;
                continue;
            }
        };
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                make_dirs(to, &rel)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let Some(parent) = rel.parent() else {
                    done.skipped += 1;
                    continue;
                };
                let size = entry.header().size().unwrap_or(u64::MAX);
                if size > cap.saturating_sub(done.bytes) {
                    done.left = Some((rel.to_string_lossy().into_owned(), size));
                    return Ok(done);
                }
                let dir = make_dirs(to, parent)?;
                let path = dir.join(rel.file_name().unwrap_or_default());
                done.bytes += write_file(&path, &mut entry, mode)?;
                done.files += 1;
            }
            _ => done.skipped += 1,
        }
    }
    Ok(done)
}

/// Where an archive entry goes.
enum Place {
    /// The top-level directory itself: `to`.
    Top,
    /// A plain relative path below it.
    Inside(PathBuf),
    /// Anything with `..`, a root or a prefix, or not UTF-8.
    Refused,
}

/// The entry's place below the archive's top-level directory.
fn place(raw: &[u8]) -> Place {
    let Ok(text) = std::str::from_utf8(raw) else {
        return Place::Refused;
    };
    let mut parts = Path::new(text)
        .components()
        .filter(|c| *c != Component::CurDir);
    let Some(Component::Normal(_top)) = parts.next() else {
        return Place::Refused;
    };
    let mut rel = PathBuf::new();
    for c in parts {
        match c {
            Component::Normal(name) => rel.push(name),
            _ => return Place::Refused,
        }
    }
    if rel.as_os_str().is_empty() {
        Place::Top
    } else {
        Place::Inside(rel)
    }
}

/// Makes `to/rel` a real directory, component by component: a symlink or file in the way is removed
/// (it lies inside `to`), so nothing is written through a link. Returns the directory.
fn make_dirs(to: &Path, rel: &Path) -> io::Result<PathBuf> {
    let mut at = to.to_path_buf();
    for c in rel.components() {
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => fs::remove_file(&at)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        fs::create_dir(&at)?;
    }
    Ok(at)
}

/// Writes a new file at `path` (whatever was there removed first; a directory there is left and the
/// entry skipped), created exclusively so that a link planted meanwhile is never followed.
fn write_file(path: &Path, data: &mut impl Read, mode: u32) -> io::Result<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Ok(0),
        Ok(_) => fs::remove_file(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode | 0o600)
        .open(path)?;
    io::copy(data, &mut file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn archive(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            // Bypass the builder's own path checks: a hostile archive is written byte by byte.
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn nothing_lands_outside_the_target() {
        let root = tempfile::tempdir().unwrap();
        let to = root.path().join("to");
        let tar = archive(&[
            ("ck/", tar::EntryType::Directory, b"", ""),
            ("ck/ok.txt", tar::EntryType::Regular, b"fine", ""),
            ("ck/../escaped", tar::EntryType::Regular, b"bad", ""),
            ("/abs", tar::EntryType::Regular, b"bad", ""),
            ("ck/evil", tar::EntryType::Symlink, b"", "/etc"),
            ("ck/evil/passwd", tar::EntryType::Regular, b"bad", ""),
            ("ck/link", tar::EntryType::Link, b"", "ck/ok.txt"),
            ("ck/dev", tar::EntryType::Char, b"", ""),
        ]);
        let done = unpack(&tar[..], &to, u64::MAX).unwrap();
        assert_eq!(fs::read(to.join("ok.txt")).unwrap(), b"fine");
        assert!(!root.path().join("escaped").exists());
        assert!(!to.join("link").exists() && !to.join("dev").exists());
        // The symlink was refused, so `evil` became a real directory holding the file.
        assert!(fs::symlink_metadata(to.join("evil")).unwrap().is_dir());
        assert_eq!(fs::read(to.join("evil/passwd")).unwrap(), b"bad");
        assert_eq!((done.files, done.bytes, done.skipped), (2, 7, 5));
    }

    #[test]
    fn unpacking_stops_before_the_first_file_past_the_cap() {
        let root = tempfile::tempdir().unwrap();
        let to = root.path().join("to");
        let tar = archive(&[
            ("m/a", tar::EntryType::Regular, &[1u8; 600], ""),
            ("m/big", tar::EntryType::Regular, &[2u8; 500], ""),
            ("m/small", tar::EntryType::Regular, &[3u8; 10], ""),
        ]);
        let done = unpack(&tar[..], &to, 1000).unwrap();
        assert_eq!((done.files, done.bytes), (1, 600));
        assert_eq!(done.left, Some(("big".to_string(), 500)));
        assert!(to.join("a").exists());
        assert!(!to.join("big").exists() && !to.join("small").exists());
        let all = unpack(&tar[..], &root.path().join("all"), 1110).unwrap();
        assert_eq!((all.files, all.bytes, all.left), (3, 1110, None));
    }

    #[test]
    fn an_existing_symlink_is_replaced_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = root.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let to = root.path().join("to");
        fs::create_dir(&to).unwrap();
        std::os::unix::fs::symlink(&outside, to.join("d")).unwrap();
        std::os::unix::fs::symlink(outside.join("f"), to.join("f")).unwrap();
        let tar = archive(&[
            ("w/d/x", tar::EntryType::Regular, b"1", ""),
            ("w/f", tar::EntryType::Regular, b"2", ""),
        ]);
        unpack(&tar[..], &to, u64::MAX).unwrap();
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        assert_eq!(fs::read(to.join("d/x")).unwrap(), b"1");
        assert_eq!(fs::read(to.join("f")).unwrap(), b"2");
    }

    #[tokio::test]
    async fn a_packed_tree_unpacks_to_the_same_files() {
        let root = tempfile::tempdir().unwrap();
        let src = root.path().join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("a.py"), b"print(1)").unwrap();
        fs::write(src.join("sub/b.bin"), vec![7u8; 3 * CHUNK + 5]).unwrap();
        let owner = Owner { uid: 1234, gid: 99 };
        let reader = ChunkReader::spawn(pack(vec![("top".into(), src)], owner));
        let to = root.path().join("to");
        let to2 = to.clone();
        let done = tokio::task::spawn_blocking(move || unpack(reader, &to2, u64::MAX))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.files, 2);
        assert_eq!(done.bytes, 8 + 3 * CHUNK as u64 + 5);
        assert_eq!(fs::read(to.join("a.py")).unwrap(), b"print(1)");
        assert_eq!(
            Owner::parse("1000:1000"),
            Some(Owner {
                uid: 1000,
                gid: 1000
            })
        );
        assert_eq!(Owner::parse("me"), None);
    }
}
