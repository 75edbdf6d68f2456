//! The progress line of long work (exports, imports, bundle checks): on
//! stderr and only when stderr is a terminal, so that scripts and logs never
//! see it; rewritten in place with `\r` at most ten times a second, and ended
//! with a newline when dropped.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the line is redrawn at most.
const EVERY: Duration = Duration::from_millis(100);

pub struct ProgressLine {
    on_terminal: bool,
    started: Instant,
    drawn_at: Option<Instant>,
    /// What to show next, held back while the line was drawn too recently.
    pending: Option<String>,
    /// The characters drawn last, to blank out when a shorter text follows.
    width: usize,
}

impl ProgressLine {
    pub fn new() -> Self {
        Self {
            on_terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            drawn_at: None,
            pending: None,
            width: 0,
        }
    }

    /// Shows what `text` makes of the time since the work began, now or, if
    /// the line was drawn less than a tenth of a second ago, at the next
    /// update or the end.
    pub fn update(&mut self, text: impl FnOnce(Duration) -> String) {
        if !self.on_terminal {
            return;
        }
        let text = text(self.started.elapsed());
        if self.drawn_at.is_some_and(|at| at.elapsed() < EVERY) {
            self.pending = Some(text);
        } else {
            self.draw(&text);
        }
    }

    /// Shows `text` now: the work enters a step with no progress of its own.
    pub fn show(&mut self, text: &str) {
        if self.on_terminal {
            self.draw(text);
        }
    }

    fn draw(&mut self, text: &str) {
        let width = text.chars().count();
        let blank = self.width.saturating_sub(width);
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r{text}{:blank$}", "");
        let _ = stderr.flush();
        self.width = width;
        self.drawn_at = Some(Instant::now());
        self.pending = None;
    }
}

impl Drop for ProgressLine {
    fn drop(&mut self) {
        if let Some(text) = self.pending.take() {
            self.draw(&text);
        }
        if self.drawn_at.is_some() {
            eprintln!();
        }
    }
}

/// Things done per second, over `elapsed`.
pub fn rate(done: u64, elapsed: Duration) -> u64 {
    (done as f64 / elapsed.as_secs_f64().max(0.001)) as u64
}
