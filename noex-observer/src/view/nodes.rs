//! The nodes view: every node of the cluster with its state, uptime, processes, messages
//! handled and traffic, and below, the connections of the selected node with the traffic
//! of each (messages and bytes per second, in and out).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Row, Table, TableState};
use ratatui::Frame;

use super::{per_second, round_trip, uptime, SELECTED};
use crate::model::{Model, Rates};

pub(super) fn render(frame: &mut Frame, area: Rect, model: &Model) {
    let height = (model.nodes.len() as u16 + 3).max(5);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(height), Constraint::Min(3)]).areas(area);
    let header = Row::new([
        "NODE",
        "STATUS",
        "UPTIME",
        "PROCS",
        "QUEUED",
        "HANDLED/S",
        "MSG/S IN/OUT",
        "BYTES/S IN/OUT",
        "RTT",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let id_width = width(model.nodes.iter().map(|n| n.id.chars().count()), 4);
    let rows = model.nodes.iter().map(|n| {
        Row::new([
            n.id.clone(),
            n.state.to_string(),
            uptime(n.uptime),
            n.processes.to_string(),
            n.queued.to_string(),
            per_second(n.handled),
            messages(&n.traffic),
            bytes(&n.traffic),
            round_trip(n.round_trip),
        ])
    });
    let widths = [
        Constraint::Length(id_width),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(12),
        Constraint::Length(14),
        Constraint::Length(8),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(Block::bordered().title(format!(" Nodes ({}) ", model.nodes.len())))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol(SELECTED);
    let mut state = TableState::default().with_selected(model.selected_node_index());
    frame.render_stateful_widget(table, top, &mut state);

    let title = match &model.peers_of {
        Some(of) => format!(" Connections of {of} "),
        None => " Connections ".to_owned(),
    };
    let header = Row::new([
        "PEER",
        "MSG/S IN/OUT",
        "BYTES/S IN/OUT",
        "QUEUED B",
        "CALLS",
        "RTT",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let ids: Vec<String> = model
        .peers
        .iter()
        .map(|p| {
            if p.hidden {
                format!("{} (hidden)", p.id)
            } else {
                p.id.clone()
            }
        })
        .collect();
    let id_width = width(ids.iter().map(|id| id.chars().count()), 4);
    let rows = model.peers.iter().zip(ids).map(|(p, id)| {
        Row::new([
            id,
            messages(&p.rates),
            bytes(&p.rates),
            p.queued_bytes.to_string(),
            p.calls_pending.to_string(),
            round_trip(p.round_trip),
        ])
    });
    let widths = [
        Constraint::Length(id_width),
        Constraint::Length(12),
        Constraint::Length(14),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(8),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(title)),
        bottom,
    );
}

/// The widest of `widths`, at least `min`, as a column width.
fn width(widths: impl Iterator<Item = usize>, min: usize) -> u16 {
    widths.max().unwrap_or(0).max(min).min(u16::MAX as usize) as u16
}

/// Messages per second in and out: `46/38`.
fn messages(rates: &Rates) -> String {
    format!(
        "{}/{}",
        per_second(rates.messages_in),
        per_second(rates.messages_out)
    )
}

/// Bytes per second in and out: `4.2k/1.5k`.
fn bytes(rates: &Rates) -> String {
    format!(
        "{}/{}",
        per_second(rates.bytes_in),
        per_second(rates.bytes_out)
    )
}
