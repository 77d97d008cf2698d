//! The dashboard's state and what each key does to it. No terminal and no Docker: the runner feeds
//! it rows and keys, carries out the [`Action`] a key returns, and reports the [`Outcome`]. The
//! only reads are in [`Row::load`] (a bottle's published config and a saved Dockerfile, for the
//! diff); keys never touch the disk.

use bottle_supervise_queue::Change;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::supervise::apply::{ApplyOptions, OperatorEdit};
use crate::supervise::{Item, preview};

/// Names one proposal across refreshes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemKey {
    /// The bottle's identity.
    pub bottle: String,
    /// The proposal's id.
    pub id: String,
}

impl std::fmt::Display for ItemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.id, self.bottle)
    }
}

/// One pending proposal, as the dashboard shows it.
#[derive(Debug, Clone)]
pub struct Row {
    /// The proposal and its bottle.
    pub item: Item,
    /// One line saying what it asks for.
    pub summary: String,
    /// The change as a diff against the bottle's current configuration.
    pub diff: String,
}

impl Row {
    /// Read what the row shows: the diff needs the bottle's published current configuration.
    pub fn load(item: Item) -> Row {
        let current = item.bottle.queue.current().unwrap_or_default();
        let change = &item.entry.proposal.change;
        Row {
            summary: preview::summary(change),
            diff: preview::diff(&current, change, &item.bottle.state_dir),
            item,
        }
    }

    /// Its key.
    pub fn key(&self) -> ItemKey {
        ItemKey {
            bottle: self.item.bottle.identity.clone(),
            id: self.item.entry.proposal.id.clone(),
        }
    }
}

/// What of a running bottle the operator can edit directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditTarget {
    /// The egress proxy's credential routes.
    Routes,
    /// The hosts the bottle may reach.
    Allow,
}

impl EditTarget {
    /// How the dashboard names it.
    pub fn name(self) -> &'static str {
        match self {
            EditTarget::Routes => "routes",
            EditTarget::Allow => "allowlist",
        }
    }
}

/// Something for the runner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Leave the dashboard.
    Quit,
    /// Approve a proposal: as proposed, or with the operator's `change`.
    Approve {
        /// Which.
        key: ItemKey,
        /// The operator's version of the change, if modified.
        change: Option<Change>,
        /// Whether a token may go to a new host.
        options: ApplyOptions,
    },
    /// Open the proposal's change in `$EDITOR`, then approve what comes back.
    Modify {
        /// Which.
        key: ItemKey,
    },
    /// Reject a proposal; the reason goes back to the agent.
    Reject {
        /// Which.
        key: ItemKey,
        /// Why (never empty).
        reason: String,
    },
    /// Open a running bottle's routes or allowlist in `$EDITOR`, then apply the result.
    Edit {
        /// The bottle's identity.
        bottle: String,
        /// What to edit.
        target: EditTarget,
    },
    /// Apply an operator edit already made (asked again with other options).
    ApplyEdit {
        /// The bottle's identity.
        bottle: String,
        /// The edit.
        edit: OperatorEdit,
        /// Whether a token may go to a new host.
        options: ApplyOptions,
    },
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It worked; what happened.
    Done(String),
    /// It did not; why, for the operator.
    Failed(String),
    /// Refused because a route would send a token to a host it was never sent to: ask the
    /// operator, and run `retry` (which allows it) on yes.
    NewTokenHost {
        /// The refusal.
        message: String,
        /// The same action allowing the new host.
        retry: Action,
    },
}

/// The main view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Every pending proposal.
    List,
    /// The selected proposal, scrolled down by `scroll` lines.
    Detail {
        /// Lines scrolled.
        scroll: u16,
    },
}

/// What the bottom of the screen asks, if anything; keys go there first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// Nothing.
    None,
    /// The reason for rejecting `key`, being typed.
    Reason {
        /// The proposal.
        key: ItemKey,
        /// What was typed so far.
        input: String,
    },
    /// A yes/no question; yes runs `action`.
    Confirm {
        /// The question.
        question: String,
        /// What yes does.
        action: Action,
    },
    /// Which bottle and what of it to edit.
    EditMenu {
        /// (identity, target) choices.
        choices: Vec<(String, EditTarget)>,
        /// The highlighted choice.
        selected: usize,
    },
}

/// Whether the status line reports success or trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// Information.
    Info,
    /// An error or refusal.
    Error,
}

/// The whole state of the dashboard.
#[derive(Debug, Clone)]
pub struct App {
    rows: Vec<Row>,
    bottles: Vec<String>,
    selected: usize,
    /// The main view.
    pub view: View,
    /// The question at the bottom, if any.
    pub prompt: Prompt,
    /// The last result or error.
    pub status: Option<(StatusKind, String)>,
}

impl Default for App {
    fn default() -> Self {
        App {
            rows: Vec::new(),
            bottles: Vec::new(),
            selected: 0,
            view: View::List,
            prompt: Prompt::None,
            status: None,
        }
    }
}

const PAGE: u16 = 10;

impl App {
    /// The pending proposals, oldest first.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The identities of every bottle with a queue.
    pub fn bottles(&self) -> &[String] {
        &self.bottles
    }

    /// The index of the selected row.
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// The selected row, if there is one.
    pub fn selected_row(&self) -> Option<&Row> {
        self.rows.get(self.selected)
    }

    /// The row of `key`, if it is still pending.
    pub fn find(&self, key: &ItemKey) -> Option<&Row> {
        self.rows.iter().find(|r| r.key() == *key)
    }

    /// Replace the rows with a fresh read of the queues, keeping the selection on the same
    /// proposal where it still exists. A detail view whose proposal went away returns to the list.
    pub fn set_rows(&mut self, rows: Vec<Row>, bottles: Vec<String>) {
        let before = self.selected_row().map(Row::key);
        self.rows = rows;
        self.bottles = bottles;
        match before
            .as_ref()
            .and_then(|k| self.rows.iter().position(|r| r.key() == *k))
        {
            Some(i) => self.selected = i,
            None => {
                self.selected = self.selected.min(self.rows.len().saturating_sub(1));
                if before.is_some() && matches!(self.view, View::Detail { .. }) {
                    self.view = View::List;
                }
            }
        }
        if self.rows.is_empty() {
            self.view = View::List;
        }
    }

    /// Say that an action is under way.
    pub fn working(&mut self, what: impl Into<String>) {
        self.status = Some((StatusKind::Info, what.into()));
    }

    /// Take in how an action ended.
    pub fn finished(&mut self, outcome: Outcome) {
        self.prompt = Prompt::None;
        match outcome {
            Outcome::Done(message) => {
                self.status = Some((StatusKind::Info, message));
                self.view = View::List;
            }
            Outcome::Failed(message) => self.status = Some((StatusKind::Error, message)),
            Outcome::NewTokenHost { message, retry } => {
                self.status = Some((StatusKind::Error, message));
                self.prompt = Prompt::Confirm {
                    question: "Send the token to that new host anyway? (y/n)".into(),
                    action: retry,
                };
            }
        }
    }

    /// Take a key; returns what the runner should do, if anything.
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Action::Quit);
        }
        match std::mem::replace(&mut self.prompt, Prompt::None) {
            Prompt::None => self.main_key(key),
            Prompt::Reason { key: item, input } => self.reason_key(key, item, input),
            Prompt::Confirm { question, action } => match key.code {
                KeyCode::Char('y' | 'Y') => Some(action),
                KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                    self.status = Some((StatusKind::Info, "cancelled; nothing was done".into()));
                    None
                }
                _ => {
                    self.prompt = Prompt::Confirm { question, action };
                    None
                }
            },
            Prompt::EditMenu { choices, selected } => self.menu_key(key, choices, selected),
        }
    }

    fn main_key(&mut self, key: KeyEvent) -> Option<Action> {
        let detail = matches!(self.view, View::Detail { .. });
        match key.code {
            KeyCode::Char('q') => return Some(Action::Quit),
            KeyCode::Esc | KeyCode::Left | KeyCode::Char('h') | KeyCode::Backspace if detail => {
                self.view = View::List;
            }
            KeyCode::Esc => return Some(Action::Quit),
            KeyCode::Up | KeyCode::Char('k') => self.up(1),
            KeyCode::Down | KeyCode::Char('j') => self.down(1),
            KeyCode::PageUp => self.up(PAGE),
            KeyCode::PageDown | KeyCode::Char(' ') => self.down(PAGE),
            KeyCode::Home | KeyCode::Char('g') => self.up(u16::MAX),
            KeyCode::End | KeyCode::Char('G') => self.down(u16::MAX),
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l')
                if !detail && self.selected_row().is_some() =>
            {
                self.view = View::Detail { scroll: 0 };
            }
            KeyCode::Char('e') => self.open_edit_menu(),
            KeyCode::Char(c @ ('a' | 'A' | 'm' | 'r')) => {
                let Some(row) = self.selected_row() else {
                    self.status = Some((StatusKind::Error, "no proposal selected".into()));
                    return None;
                };
                let key = row.key();
                match c {
                    'a' => {
                        return Some(Action::Approve {
                            key,
                            change: None,
                            options: ApplyOptions::default(),
                        });
                    }
                    'A' => {
                        self.prompt = Prompt::Confirm {
                            question: format!(
                                "Approve {key}, allowing a route to send a token to a host it \
                                 was never sent to? (y/n)"
                            ),
                            action: Action::Approve {
                                key,
                                change: None,
                                options: ApplyOptions {
                                    allow_new_token_hosts: true,
                                },
                            },
                        };
                    }
                    'm' => return Some(Action::Modify { key }),
                    _ => {
                        self.prompt = Prompt::Reason {
                            key,
                            input: String::new(),
                        };
                    }
                }
            }
            _ => {}
        }
        None
    }

    fn up(&mut self, n: u16) {
        match &mut self.view {
            View::List => self.selected = self.selected.saturating_sub(n.into()),
            View::Detail { scroll } => *scroll = scroll.saturating_sub(n),
        }
    }

    fn down(&mut self, n: u16) {
        match &mut self.view {
            View::List => {
                let last = self.rows.len().saturating_sub(1);
                self.selected = self.selected.saturating_add(n.into()).min(last);
            }
            View::Detail { scroll } => *scroll = scroll.saturating_add(n),
        }
    }

    fn reason_key(&mut self, key: KeyEvent, item: ItemKey, mut input: String) -> Option<Action> {
        match key.code {
            KeyCode::Esc => {
                self.status = Some((StatusKind::Info, "rejection cancelled".into()));
                return None;
            }
            KeyCode::Enter => {
                let reason = input.trim();
                if reason.is_empty() {
                    self.status = Some((
                        StatusKind::Error,
                        "a rejection needs a reason for the agent: type one, or Esc to cancel"
                            .into(),
                    ));
                } else {
                    return Some(Action::Reject {
                        key: item,
                        reason: reason.to_owned(),
                    });
                }
            }
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => input.clear(),
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => input.push(c),
            _ => {}
        }
        self.prompt = Prompt::Reason { key: item, input };
        None
    }

    fn open_edit_menu(&mut self) {
        let mut order: Vec<String> = Vec::new();
        if let Some(row) = self.selected_row() {
            order.push(row.item.bottle.identity.clone());
        }
        for b in &self.bottles {
            if !order.contains(b) {
                order.push(b.clone());
            }
        }
        if order.is_empty() {
            self.status = Some((StatusKind::Error, "no bottle has a supervise queue".into()));
            return;
        }
        let choices = order
            .into_iter()
            .flat_map(|b| [(b.clone(), EditTarget::Routes), (b, EditTarget::Allow)])
            .collect();
        self.prompt = Prompt::EditMenu {
            choices,
            selected: 0,
        };
    }

    fn menu_key(
        &mut self,
        key: KeyEvent,
        choices: Vec<(String, EditTarget)>,
        mut selected: usize,
    ) -> Option<Action> {
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') => return None,
            KeyCode::Enter => {
                let (bottle, target) = choices.get(selected)?.clone();
                return Some(Action::Edit { bottle, target });
            }
            KeyCode::Up | KeyCode::Char('k') => selected = selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => {
                selected = (selected + 1).min(choices.len().saturating_sub(1));
            }
            _ => {}
        }
        self.prompt = Prompt::EditMenu { choices, selected };
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervise::SupervisedBottle;
    use bottle_supervise_queue::{Entry, Proposal, Queue, Tool};

    fn row(bottle: &str, id: &str) -> Row {
        let change = Change::allow_host_from_url("https://docs.example/x").unwrap();
        let item = Item {
            bottle: SupervisedBottle {
                identity: bottle.into(),
                state_dir: format!("/nonexistent/{bottle}").into(),
                queue: Queue::at(format!("/nonexistent/{bottle}/q")),
            },
            entry: Entry {
                proposal: Proposal {
                    id: id.into(),
                    tool: Tool::FirewallBlock,
                    justification: "docs".into(),
                    created_at: "2026-01-01T00:00:00Z".into(),
                    change,
                },
                decision: None,
            },
        };
        Row::load(item)
    }

    fn app() -> App {
        let mut app = App::default();
        app.set_rows(
            vec![row("b1", "1-a"), row("b2", "2-b"), row("b1", "3-c")],
            vec!["b1".into(), "b2".into(), "b3".into()],
        );
        app
    }

    fn press(app: &mut App, code: KeyCode) -> Option<Action> {
        app.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn typed(app: &mut App, text: &str) {
        for c in text.chars() {
            assert_eq!(press(app, KeyCode::Char(c)), None);
        }
    }

    fn key(bottle: &str, id: &str) -> ItemKey {
        ItemKey {
            bottle: bottle.into(),
            id: id.into(),
        }
    }

    #[test]
    fn moving_stays_within_the_list() {
        let mut app = app();
        press(&mut app, KeyCode::Up);
        assert_eq!(app.selected(), 0);
        press(&mut app, KeyCode::Char('j'));
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        assert_eq!(app.selected(), 2);
        press(&mut app, KeyCode::Char('k'));
        assert_eq!(app.selected_row().unwrap().key(), key("b2", "2-b"));
        press(&mut app, KeyCode::Home);
        assert_eq!(app.selected(), 0);
    }

    #[test]
    fn enter_opens_the_detail_which_scrolls_and_esc_returns() {
        let mut app = app();
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.view, View::Detail { scroll: 0 });
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::PageDown);
        assert_eq!(app.view, View::Detail { scroll: 1 + PAGE });
        press(&mut app, KeyCode::Up);
        assert_eq!(app.view, View::Detail { scroll: PAGE });
        assert_eq!(app.selected(), 1, "scrolling does not move the selection");
        assert_eq!(press(&mut app, KeyCode::Esc), None);
        assert_eq!(app.view, View::List);
        assert_eq!(press(&mut app, KeyCode::Esc), Some(Action::Quit));
        assert_eq!(press(&mut app, KeyCode::Char('q')), Some(Action::Quit));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(app.handle_key(ctrl_c), Some(Action::Quit));
    }

    #[test]
    fn approve_acts_on_the_selected_proposal_in_list_and_detail() {
        let mut app = app();
        assert_eq!(
            press(&mut app, KeyCode::Char('a')),
            Some(Action::Approve {
                key: key("b1", "1-a"),
                change: None,
                options: ApplyOptions::default(),
            })
        );
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Enter);
        assert_eq!(
            press(&mut app, KeyCode::Char('m')),
            Some(Action::Modify {
                key: key("b2", "2-b")
            })
        );
        app.finished(Outcome::Done("approved 2-b".into()));
        assert_eq!(app.view, View::List, "a decision returns to the list");
        assert_eq!(app.status, Some((StatusKind::Info, "approved 2-b".into())));
    }

    #[test]
    fn approve_allowing_a_new_token_host_needs_a_yes() {
        let mut app = app();
        assert_eq!(press(&mut app, KeyCode::Char('A')), None);
        assert!(matches!(app.prompt, Prompt::Confirm { .. }));
        assert_eq!(press(&mut app, KeyCode::Char('x')), None, "other keys wait");
        assert_eq!(press(&mut app, KeyCode::Char('n')), None);
        assert_eq!(app.prompt, Prompt::None);
        press(&mut app, KeyCode::Char('A'));
        assert_eq!(
            press(&mut app, KeyCode::Char('y')),
            Some(Action::Approve {
                key: key("b1", "1-a"),
                change: None,
                options: ApplyOptions {
                    allow_new_token_hosts: true
                },
            })
        );
        assert_eq!(app.prompt, Prompt::None);
    }

    #[test]
    fn a_new_token_host_refusal_is_shown_and_offers_the_retry() {
        let mut app = app();
        let retry = Action::ApplyEdit {
            bottle: "b1".into(),
            edit: OperatorEdit::Allow(vec!["x.example".into()]),
            options: ApplyOptions {
                allow_new_token_hosts: true,
            },
        };
        app.finished(Outcome::NewTokenHost {
            message: "routes[0] would send the token".into(),
            retry: retry.clone(),
        });
        assert_eq!(
            app.status,
            Some((StatusKind::Error, "routes[0] would send the token".into()))
        );
        assert_eq!(press(&mut app, KeyCode::Char('y')), Some(retry));
        app.finished(Outcome::Failed("bottle `b1` is not running".into()));
        assert_eq!(app.status.as_ref().unwrap().0, StatusKind::Error);
    }

    #[test]
    fn reject_asks_for_a_reason_and_refuses_an_empty_one() {
        let mut app = app();
        press(&mut app, KeyCode::Char('r'));
        assert!(matches!(app.prompt, Prompt::Reason { .. }));
        assert_eq!(press(&mut app, KeyCode::Enter), None);
        assert_eq!(app.status.as_ref().unwrap().0, StatusKind::Error);
        assert!(matches!(app.prompt, Prompt::Reason { .. }), "still asking");
        typed(&mut app, "  not nowx");
        press(&mut app, KeyCode::Backspace);
        assert!(
            matches!(&app.prompt, Prompt::Reason { input, .. } if input == "  not now"),
            "{:?}",
            app.prompt
        );
        assert_eq!(
            press(&mut app, KeyCode::Enter),
            Some(Action::Reject {
                key: key("b1", "1-a"),
                reason: "not now".into()
            })
        );
        // Esc cancels; keys typed into the prompt never act as commands.
        press(&mut app, KeyCode::Char('r'));
        typed(&mut app, "qa");
        assert_eq!(press(&mut app, KeyCode::Esc), None);
        assert_eq!(app.prompt, Prompt::None);
        assert_eq!(app.view, View::List);
    }

    #[test]
    fn edit_menu_offers_the_selected_bottle_first_then_every_bottle() {
        let mut app = app();
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Char('e'));
        let Prompt::EditMenu { choices, .. } = &app.prompt else {
            panic!("{:?}", app.prompt)
        };
        let names: Vec<String> = choices
            .iter()
            .map(|(b, t)| format!("{b}:{}", t.name()))
            .collect();
        assert_eq!(
            names,
            [
                "b2:routes",
                "b2:allowlist",
                "b1:routes",
                "b1:allowlist",
                "b3:routes",
                "b3:allowlist"
            ]
        );
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        assert_eq!(
            press(&mut app, KeyCode::Enter),
            Some(Action::Edit {
                bottle: "b1".into(),
                target: EditTarget::Allow
            })
        );
        press(&mut app, KeyCode::Char('e'));
        assert_eq!(press(&mut app, KeyCode::Esc), None);
        assert_eq!(app.prompt, Prompt::None);
    }

    #[test]
    fn an_empty_dashboard_explains_instead_of_acting() {
        let mut app = App::default();
        assert_eq!(press(&mut app, KeyCode::Char('a')), None);
        assert_eq!(app.status.as_ref().unwrap().0, StatusKind::Error);
        press(&mut app, KeyCode::Enter);
        assert_eq!(app.view, View::List);
        press(&mut app, KeyCode::Char('e'));
        assert_eq!(app.prompt, Prompt::None);
        app.set_rows(Vec::new(), vec!["b9".into()]);
        press(&mut app, KeyCode::Char('e'));
        assert!(matches!(app.prompt, Prompt::EditMenu { .. }));
    }

    #[test]
    fn refresh_keeps_the_selection_on_the_same_proposal() {
        let mut app = app();
        press(&mut app, KeyCode::Down);
        press(&mut app, KeyCode::Down);
        // A proposal decided elsewhere disappears and a new one arrives.
        app.set_rows(
            vec![row("b2", "2-b"), row("b1", "3-c"), row("b3", "4-d")],
            app.bottles().to_vec(),
        );
        assert_eq!(app.selected_row().unwrap().key(), key("b1", "3-c"));
        press(&mut app, KeyCode::Enter);
        // The shown proposal goes away: back to the list, selection kept in range.
        app.set_rows(vec![row("b2", "2-b")], app.bottles().to_vec());
        assert_eq!(app.view, View::List);
        assert_eq!(app.selected(), 0);
        app.set_rows(Vec::new(), Vec::new());
        assert!(app.selected_row().is_none());
    }
}
