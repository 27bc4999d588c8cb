//! The processes view: the processes of the selected node, longest mailbox or highest
//! message rate first.

use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Row, Table, TableState};
use ratatui::Frame;

use super::{per_second, short_type, SELECTED};
use crate::model::{Model, ProcessRow, Sort};

/// The marker of the column the list is sorted by.
pub const SORTED: &str = "▼";

pub(super) fn render(frame: &mut Frame, area: Rect, model: &Model) {
    let (mailbox, rate) = match model.sort {
        Sort::MailboxLen => (format!("MAILBOX{SORTED}"), "MSG/S".to_owned()),
        Sort::MessageRate => ("MAILBOX".to_owned(), format!("MSG/S{SORTED}")),
    };
    let header = Row::new([
        "PID".to_owned(),
        "NAME".to_owned(),
        "BEHAVIOUR".to_owned(),
        "STATUS".to_owned(),
        mailbox,
        rate,
        "HANDLED".to_owned(),
        "RESTARTS".to_owned(),
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let names: Vec<String> = model.processes.iter().map(name).collect();
    let pid_width = model
        .processes
        .iter()
        .map(|p| p.pid.to_string().chars().count())
        .max()
        .unwrap_or(0)
        .max(3) as u16;
    let name_width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(4) as u16;
    let rows = model.processes.iter().zip(names).map(|(p, name)| {
        Row::new([
            p.pid.to_string(),
            name,
            short_type(&p.behavior).to_owned(),
            p.status.clone(),
            p.mailbox_len.to_string(),
            p.rate.map_or_else(|| "-".to_owned(), per_second),
            p.message_count.to_string(),
            p.restarts.map_or_else(String::new, |r| r.to_string()),
        ])
    });
    let widths = [
        Constraint::Length(pid_width),
        Constraint::Length(name_width),
        Constraint::Fill(1),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(8),
    ];
    let sort = match model.sort {
        Sort::MailboxLen => "mailbox length",
        Sort::MessageRate => "message rate",
    };
    let title = match &model.processes_of {
        Some(of) => format!(
            " Processes of {of}: {} of {}, by {sort} ",
            model.processes.len(),
            model.process_total
        ),
        None => format!(" Processes, by {sort} "),
    };
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(title))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol(SELECTED);
    let mut state = TableState::default().with_selected(model.selected_process_index());
    frame.render_stateful_widget(table, area, &mut state);
}

/// A process's local name, or else its global name marked so.
fn name(process: &ProcessRow) -> String {
    match (&process.name, &process.global_name) {
        (Some(name), _) => name.clone(),
        (None, Some(global)) => format!("{global} (global)"),
        (None, None) => String::new(),
    }
}
