//! The supervision view: every supervision tree of the cluster, children indented under
//! their supervisor, with where each runs and how often it was restarted.

use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, List, ListItem, ListState};
use ratatui::Frame;

use super::SELECTED;
use crate::model::{Model, TreeKind, TreeRow};

/// The lines drawn before row `i`: `│   ` for each level above with more to come, then
/// `├── ` or, for the last child, `└── `.
fn branch(rows: &[TreeRow], i: usize) -> String {
    let depth = rows[i].depth;
    let more_at = |level: usize| {
        rows[i + 1..]
            .iter()
            .map(|r| r.depth)
            .take_while(|&d| d >= level)
            .any(|d| d == level)
    };
    let mut branch = String::new();
    for level in 1..depth {
        branch.push_str(if more_at(level) { "│   " } else { "    " });
    }
    if depth > 0 {
        branch.push_str(if more_at(depth) {
            "├── "
        } else {
            "└── "
        });
    }
    branch
}

pub(super) fn render(frame: &mut Frame, area: Rect, model: &Model) {
    let items = model.tree.iter().enumerate().map(|(i, row)| {
        let branch = branch(&model.tree, i);
        let kind = match row.kind {
            TreeKind::Supervisor {
                distributed: true, ..
            } => "distributed supervisor",
            TreeKind::Supervisor { .. } => "supervisor",
            TreeKind::Worker => "worker",
        };
        let pid = match &row.pid {
            Some(pid) => pid.to_string(),
            None => "not running".to_owned(),
        };
        let mut line = if row.label.is_empty() {
            format!("{branch}{kind}  {pid}")
        } else {
            format!("{branch}{}  {kind}  {pid}", row.label)
        };
        if row.restarts > 0 {
            line.push_str(&format!("  restarts {}", row.restarts));
        }
        if row.restarting {
            line.push_str("  restarting");
        }
        if let TreeKind::Supervisor {
            answered: false, ..
        } = row.kind
        {
            line.push_str("  (did not answer)");
        }
        ListItem::new(line)
    });
    let title = format!(" Supervision trees ({} entries) ", model.tree.len());
    let list = List::new(items)
        .block(Block::bordered().title(title))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol(SELECTED);
    let selected = (!model.tree.is_empty()).then_some(model.selected_tree);
    let mut state = ListState::default().with_selected(selected);
    frame.render_stateful_widget(list, area, &mut state);
}
