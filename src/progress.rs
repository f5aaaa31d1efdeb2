//! A progress line on stderr for long operator operations (revoking many sessions, seeding,
//! purging): shown when stderr is a terminal or when asked for (`--progress`), so scripts
//! and pipes get clean output.
//!
//! ```no_run
//! let mut progress = rolegate::progress::Progress::stderr("revoking sessions", Some(500), false);
//! for _ in 0..500 {
//!     progress.add(1);
//! }
//! progress.finish();
//! ```

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// One progress line. On a terminal it is redrawn in place (`\r`) at most ten times a second;
/// elsewhere (forced into a log) a full line at most once a second.
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: u64,
    out: Option<Box<dyn Write + Send>>,
    terminal: bool,
    last: Option<Instant>,
}

impl Progress {
    /// On stderr, when it is a terminal or `forced`; otherwise silent.
    pub fn stderr(label: &str, total: Option<u64>, forced: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let out: Option<Box<dyn Write + Send>> =
            (terminal || forced).then(|| Box::new(std::io::stderr()) as Box<dyn Write + Send>);
        Progress::to(label, total, out, terminal)
    }

    /// On any writer (`None` = silent); `terminal` picks in-place redraws.
    pub fn to(
        label: &str,
        total: Option<u64>,
        out: Option<Box<dyn Write + Send>>,
        terminal: bool,
    ) -> Progress {
        Progress {
            label: label.to_owned(),
            total,
            done: 0,
            out,
            terminal,
            last: None,
        }
    }

    /// How many items are done so far.
    pub fn done(&self) -> u64 {
        self.done
    }

    /// `n` more items done; redraws when enough time has passed.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        let every = if self.terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        if self.last.is_none_or(|at| at.elapsed() >= every) {
            self.last = Some(Instant::now());
            self.draw(false);
        }
    }

    /// The final line, always drawn (when shown at all), ending the line.
    pub fn finish(mut self) {
        self.draw(true);
    }

    fn line(&self) -> String {
        match self.total {
            Some(total) if total > 0 => format!(
                "{}: {}/{} ({}%)",
                self.label,
                self.done,
                total,
                self.done.min(total) * 100 / total
            ),
            _ => format!("{}: {}", self.label, self.done),
        }
    }

    fn draw(&mut self, last: bool) {
        let line = self.line();
        let terminal = self.terminal;
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let _ = if terminal {
            write!(out, "\r\x1b[2K{line}{}", if last { "\n" } else { "" })
        } else {
            writeln!(out, "{line}")
        };
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_log_gets_throttled_full_lines_and_the_final_count() {
        let sink = Sink::default();
        let mut p = Progress::to("revoking", Some(4), Some(Box::new(sink.clone())), false);
        for _ in 0..4 {
            p.add(1);
        }
        p.finish();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "revoking: 1/4 (25%)\nrevoking: 4/4 (100%)\n");
    }

    #[test]
    fn a_terminal_is_redrawn_in_place_and_silent_means_silent() {
        let sink = Sink::default();
        let mut p = Progress::to("seeding", None, Some(Box::new(sink.clone())), true);
        p.add(3);
        p.finish();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text, "\r\x1b[2Kseeding: 3\r\x1b[2Kseeding: 3\n");
        let mut quiet = Progress::to("x", None, None, false);
        quiet.add(1);
        assert_eq!(quiet.done(), 1);
        quiet.finish();
    }
}
