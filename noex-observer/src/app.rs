//! What each key does to the [`Model`], and what it asks of the poller.
//!
//! | key | does |
//! | --- | --- |
//! | `1` `2` `3` `4`, Tab, Shift-Tab | nodes, processes, supervision, process view |
//! | ↑ ↓, `j` `k`, Home, End | move the selection |
//! | Enter | nodes: that node's processes; processes, supervision: that process in detail |
//! | Esc | back from the detail view |
//! | `s` | sort the processes by mailbox length or by message rate |
//! | `K`, `x` | kill, stop the selected process (after a `y`) |
//! | `q`, Ctrl-C | quit |
//!
//! `k` moves the selection up, as in vi, so kill is a capital `K`.

use crate::model::{Action, Confirm, Detail, Model, Sort, View};
use crate::poll::Command;

/// A key, as far as the observer cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Home.
    Home,
    /// End.
    End,
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Tab.
    Tab,
    /// Shift-Tab.
    BackTab,
    /// Ctrl-C.
    Interrupt,
}

/// Applies `key` to `model`; returns what the poller should do about it, if anything.
pub fn handle_key(model: &mut Model, key: Key) -> Option<Command> {
    model.revision += 1;
    if let Some(confirm) = model.confirm.take() {
        return match key {
            Key::Char('y') | Key::Char('Y') => Some(Command::Act(confirm.action, confirm.pid)),
            Key::Interrupt => {
                model.quit = true;
                None
            }
            Key::Char('n') | Key::Char('N') | Key::Esc => None,
            _ => {
                model.confirm = Some(confirm); // Only yes or no.
                None
            }
        };
    }
    match key {
        Key::Char('q') | Key::Interrupt => {
            model.quit = true;
            None
        }
        Key::Char(c @ '1'..='4') => show(model, View::ALL[c as usize - '1' as usize]),
        Key::Tab => show(model, View::ALL[(index(model.view) + 1) % View::ALL.len()]),
        Key::BackTab => show(
            model,
            View::ALL[(index(model.view) + View::ALL.len() - 1) % View::ALL.len()],
        ),
        Key::Up | Key::Char('k') => move_selection(model, Step::Back),
        Key::Down | Key::Char('j') => move_selection(model, Step::Forward),
        Key::Home => move_selection(model, Step::First),
        Key::End => move_selection(model, Step::Last),
        Key::Enter => enter(model),
        Key::Esc if model.view == View::Detail => show(model, View::Processes),
        Key::Char('s') => {
            model.sort = match model.sort {
                Sort::MailboxLen => Sort::MessageRate,
                Sort::MessageRate => Sort::MailboxLen,
            };
            model.sort_processes();
            Some(Command::Refresh)
        }
        Key::Char('K') => ask(model, Action::Kill),
        Key::Char('x') => ask(model, Action::Stop),
        _ => None,
    }
}

fn index(view: View) -> usize {
    View::ALL.iter().position(|v| *v == view).unwrap_or(0)
}

fn show(model: &mut Model, view: View) -> Option<Command> {
    model.view = view;
    Some(Command::Refresh)
}

enum Step {
    Back,
    Forward,
    First,
    Last,
}

/// The index `step` leads to from `current` in a list of `len` (which is not empty).
fn step(current: Option<usize>, len: usize, step: Step) -> usize {
    match (step, current) {
        (Step::First, _) | (Step::Back, None) => 0,
        (Step::Last, _) => len - 1,
        (Step::Back, Some(i)) => i.saturating_sub(1),
        (Step::Forward, None) => 0,
        (Step::Forward, Some(i)) => (i + 1).min(len - 1),
    }
}

fn move_selection(model: &mut Model, to: Step) -> Option<Command> {
    match model.view {
        View::Nodes if !model.nodes.is_empty() => {
            let i = step(model.selected_node_index(), model.nodes.len(), to);
            model.selected_node = Some(model.nodes[i].id.clone());
            Some(Command::Refresh)
        }
        View::Processes if !model.processes.is_empty() => {
            let i = step(model.selected_process_index(), model.processes.len(), to);
            model.selected_process = Some(model.processes[i].pid.clone());
            None
        }
        View::Tree if !model.tree.is_empty() => {
            model.selected_tree = step(Some(model.selected_tree), model.tree.len(), to);
            None
        }
        _ => None,
    }
}

fn enter(model: &mut Model) -> Option<Command> {
    match model.view {
        View::Nodes => {
            if model.selected_node.is_none() {
                model.selected_node = model.focus_node().map(str::to_owned);
            }
            show(model, View::Processes)
        }
        View::Processes | View::Tree => {
            let pid = target(model)?;
            if model.detail.as_ref().map(|d| &d.pid) != Some(&pid) {
                model.detail = Some(Detail::new(pid));
            }
            show(model, View::Detail)
        }
        View::Detail => None,
    }
}

/// The process an action would apply to: the selected one in the list or the trees, or
/// the one in detail.
fn target(model: &Model) -> Option<noex::Pid> {
    match model.view {
        View::Nodes => None,
        View::Processes => model
            .selected_process_index()
            .map(|i| model.processes[i].pid.clone()),
        View::Tree => model.tree.get(model.selected_tree)?.pid.clone(),
        View::Detail => model.detail.as_ref().map(|d| d.pid.clone()),
    }
}

fn ask(model: &mut Model, action: Action) -> Option<Command> {
    let Some(pid) = target(model) else {
        model.status = "select a process first (processes, supervision or process view)".into();
        return None;
    };
    let name = match model.view {
        View::Processes => model
            .processes
            .iter()
            .find(|p| p.pid == pid)
            .and_then(|p| p.name.clone()),
        View::Tree => model.tree.get(model.selected_tree).map(|r| r.label.clone()),
        _ => model
            .detail
            .as_ref()
            .and_then(|d| d.info.as_ref())
            .and_then(|i| i.name.clone()),
    };
    model.confirm = Some(Confirm { action, pid, name });
    None
}
