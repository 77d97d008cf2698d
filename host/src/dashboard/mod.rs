//! `bottle dashboard`: an interactive view over every bottle's supervise queue.
//!
//! Split so the behaviour is testable without a terminal:
//! - [`state`]: the model and what each key does to it, as a pure state machine that returns the
//!   [`state::Action`]s to carry out;
//! - [`view`]: drawing the state with ratatui (rendered into a test buffer by the unit tests);
//! - [`edit`]: the text an operator edits for a direct change to a bottle, and parsing it back;
//! - [`terminal`]: entering and leaving raw mode and the alternate screen, restored on drop, on
//!   panic and around `$EDITOR`.
//!
//! The runner (`cli/dashboard.rs`) reads the queues from disk every second, feeds keys to the
//! state and carries out its actions with [`crate::supervise::Decider`] on a tokio runtime.

pub mod edit;
pub mod state;
pub mod terminal;
pub mod view;

pub use state::{Action, App, EditTarget, ItemKey, Outcome, Prompt, Row, StatusKind, View};
