//! Standard output for the commands' results. A closed stdout (`etcdadm info | head -1`)
//! is an error the command returns like any other, and `main` ends quietly with status 141
//! on it, as a tool killed by SIGPIPE does. SIGPIPE itself stays ignored (see main.rs), so a
//! write to a closed pipe returns EPIPE instead of killing the process.

use std::io::Write;

/// Writing to standard output failed; `is_closed` when the reader went away.
#[derive(Debug, thiserror::Error)]
#[error("cannot write to standard output: {0}")]
pub struct StdoutError(#[source] pub std::io::Error);

impl StdoutError {
    /// The reader closed the pipe: nobody is left to tell, so the process ends quietly.
    pub fn is_closed(&self) -> bool {
        self.0.kind() == std::io::ErrorKind::BrokenPipe
    }
}

/// Writes formatted text to standard output and flushes it.
pub fn write_fmt(args: std::fmt::Arguments<'_>) -> Result<(), StdoutError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args).and_then(|()| out.flush()).map_err(StdoutError)
}

/// Writes bytes to standard output and flushes them.
pub fn write_bytes(bytes: &[u8]) -> Result<(), StdoutError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).map_err(StdoutError)
}

/// Whether `e` (or anything in its chain) is a write to a closed standard output.
pub fn is_closed(e: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(e), |c| c.source())
        .any(|c| c.downcast_ref::<StdoutError>().is_some_and(StdoutError::is_closed))
}

/// `println!` that returns `Result<(), StdoutError>` instead of panicking.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdout::write_fmt(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdout::write_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that returns `Result<(), StdoutError>` instead of panicking.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdout::write_fmt(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_pipe_on_stdout_counts_as_closed() {
        let pipe = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        /// An operation's error caused by the closed stdout.
        #[derive(Debug, thiserror::Error)]
        #[error("cannot print the table")]
        struct Printing(#[source] StdoutError);
        assert!(is_closed(&Printing(StdoutError(pipe()))), "a closed stdout below another error");
        assert!(!is_closed(&pipe()), "an EPIPE on a socket is a real error");
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(!is_closed(&StdoutError(full)));
    }
}
