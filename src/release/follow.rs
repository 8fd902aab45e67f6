//! Reading a file while a download writes it. The unpacker follows the archive as it
//! reaches the cache instead of taking the download's chunks from a queue: the download
//! never waits for the unpacking (the archive's digest, and with it etcd's start, needs
//! the whole download but only the part of the archive that holds etcd unpacked), and what
//! is ahead of the unpacker waits on disk, not in memory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

#[derive(Default)]
struct State {
    /// The file being written, once there is one.
    file: Option<Arc<File>>,
    /// How many bytes of it are written.
    written: u64,
    /// Whether the writer stopped (done, failed or dropped): nothing more comes.
    ended: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    grew: Condvar,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A file about to be written, and the reader that follows it from its start.
pub fn growing() -> (Writer, Follower) {
    let shared = Arc::new(Shared::default());
    (Writer(Arc::clone(&shared)), Follower { shared, at: 0 })
}

/// The writer's side of a followed file. Its follower sees what `grew` announced, and the
/// end once the writer is dropped, however it stops: done, failed, or its future dropped
/// before or while it ran.
pub struct Writer(Arc<Shared>);

impl Writer {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.0.state());
        self.0.grew.notify_all();
    }

    /// The file the writer writes from its start, opened for reading too (a handle of its
    /// own or a clone: the follower reads at its own offset and never moves the writer's).
    pub fn opened(&self, file: File) {
        self.update(|s| s.file = Some(Arc::new(file)));
    }

    /// `n` more bytes were written to the file.
    pub fn grew(&self, n: u64) {
        self.update(|s| s.written += n);
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.update(|s| s.ended = true);
    }
}

/// Reads a followed file: waits while the writer is behind, ends where the writer ended.
pub struct Follower {
    shared: Arc<Shared>,
    at: u64,
}

impl std::io::Read for Follower {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut s = self.shared.state();
        while s.written <= self.at {
            if s.ended || buf.is_empty() {
                return Ok(0);
            }
            s = self.shared.grew.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        let len = usize::try_from(s.written - self.at).map_or(buf.len(), |n| n.min(buf.len()));
        let Some(file) = s.file.clone() else {
            return Err(std::io::Error::other("bytes were announced before their file"));
        };
        drop(s); // the writer goes on while this reads
        let n = file.read_at(&mut buf[..len], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn file_and_follower(dir: &tempfile::TempDir) -> (File, Writer, Follower) {
        let path = dir.path().join("f");
        let w = File::options().read(true).write(true).create_new(true).open(path).unwrap();
        let (writer, follower) = growing();
        writer.opened(w.try_clone().unwrap());
        (w, writer, follower)
    }

    #[test]
    fn a_follower_reads_every_byte_written_before_and_after_it_waited_then_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, writer, mut follower) = file_and_follower(&dir);
        w.write_all(b"first ").unwrap();
        writer.grew(6);
        let read = std::thread::spawn(move || {
            let mut all = Vec::new();
            follower.read_to_end(&mut all).unwrap();
            all
        });
        std::thread::sleep(std::time::Duration::from_millis(50)); // the follower waits now
        w.write_all(b"second").unwrap();
        writer.grew(6);
        drop(writer);
        assert_eq!(read.join().unwrap(), b"first second");
    }

    #[test]
    fn a_follower_never_reads_bytes_not_announced_yet() {
        let dir = tempfile::tempdir().unwrap();
        let (mut w, writer, mut follower) = file_and_follower(&dir);
        w.write_all(b"announcedNOT YET").unwrap();
        writer.grew(9);
        let mut buf = [0u8; 64];
        assert_eq!(follower.read(&mut buf).unwrap(), 9);
        assert_eq!(&buf[..9], b"announced");
        drop(writer);
        assert_eq!(follower.read(&mut buf).unwrap(), 0, "read past the end the writer announced");
    }

    /// As when the download's future is dropped before it ever ran (SHA256SUMS failed
    /// first): the writer never opened a file.
    #[test]
    fn a_writer_dropped_before_opening_a_file_ends_its_follower() {
        let (writer, mut follower) = growing();
        let reading = std::thread::spawn(move || follower.read_to_end(&mut Vec::new()).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(50)); // the follower waits now
        drop(writer);
        assert_eq!(reading.join().unwrap(), 0);
    }
}
