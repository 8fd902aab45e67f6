//! Download progress: a bar on a terminal, a log line per quarter otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use tracing::info;

pub struct Progress {
    bar: Option<ProgressBar>,
    url: String,
    total: Option<u64>,
    done: u64,
    logged_quarter: u64,
}

impl Progress {
    pub fn new(url: &str, total: Option<u64>) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = total.map(ProgressBar::new).unwrap_or_else(ProgressBar::new_spinner);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message("downloading");
            bar
        });
        Progress { bar, url: url.into(), total, done: 0, logged_quarter: 0 }
    }

    pub fn advance(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if let Some(total) = self.total.filter(|t| *t > 0) {
            let quarter = self.done * 4 / total;
            if quarter > self.logged_quarter && quarter < 4 {
                self.logged_quarter = quarter;
                info!(url = %self.url, percent = quarter * 25, "downloading");
            }
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        info!(url = %self.url, bytes = self.done, "download complete");
    }
}
