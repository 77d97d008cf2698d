//! The terminal while the dashboard runs: raw mode and the alternate screen, always given back —
//! when the [`Tui`] is dropped (a normal exit or an error), from the panic hook (before the panic
//! message is printed, so it stays readable), and around `$EDITOR` ([`Tui::suspend`]).

use std::io::{Stdout, stdout};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::cursor::{Hide, Show};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

/// Whether this process has the terminal in raw mode on the alternate screen.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// The dashboard's terminal.
pub struct Tui {
    /// The ratatui terminal drawing to stdout.
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Tui {
    /// Take over the terminal (and make sure a panic gives it back).
    pub fn enter() -> std::io::Result<Tui> {
        install_panic_hook();
        let terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
        let mut tui = Tui { terminal };
        tui.resume()?;
        Ok(tui)
    }

    /// Give the terminal back for a while (to run `$EDITOR`).
    pub fn suspend(&mut self) {
        restore();
    }

    /// Take the terminal again after [`Tui::suspend`], redrawing everything on the next draw.
    pub fn resume(&mut self) -> std::io::Result<()> {
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        execute!(stdout(), EnterAlternateScreen, Hide)?;
        self.terminal.clear()
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        restore();
    }
}

/// Leave raw mode and the alternate screen, if this process entered them. Idempotent.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = disable_raw_mode();
        let _ = execute!(stdout(), LeaveAlternateScreen, Show);
    }
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
