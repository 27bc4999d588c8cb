//! The detail view: one process with its links, monitors, names and groups, and its
//! mailbox length over the last refreshes as a sparkline.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline, Wrap};
use ratatui::Frame;

use super::per_second;
use crate::model::{Model, HISTORY};

pub(super) fn render(frame: &mut Frame, area: Rect, model: &Model) {
    let Some(detail) = &model.detail else {
        frame.render_widget(
            Paragraph::new(
                "No process chosen: select one in the process list or the trees and press Enter.",
            )
            .block(Block::bordered().title(" Process ")),
            area,
        );
        return;
    };
    let [facts, chart] = Layout::vertical([Constraint::Min(5), Constraint::Length(7)]).areas(area);
    let mut title = format!(" Process {} ", detail.pid);
    if detail.gone {
        title.push_str("(ended) ");
    }
    let lines = match &detail.info {
        None if detail.gone => vec![Line::from("It does not run (any more).")],
        None => vec![Line::from("reading…")],
        Some(info) => {
            let pids = |pids: &[noex::Pid]| -> String {
                if pids.is_empty() {
                    "-".to_owned()
                } else {
                    pids.iter()
                        .map(|p| p.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                }
            };
            let words = |words: &[String]| -> String {
                if words.is_empty() {
                    "-".to_owned()
                } else {
                    words.join(" ")
                }
            };
            let optional =
                |pid: &Option<noex::Pid>| pid.as_ref().map_or("-".to_owned(), |p| p.to_string());
            vec![
                fact("name", info.name.clone().unwrap_or_else(|| "-".to_owned())),
                fact("behaviour", info.behavior.clone()),
                fact("status", info.status.clone()),
                fact("mailbox", info.mailbox_len.to_string()),
                fact(
                    "handled",
                    format!(
                        "{} messages, {}/s",
                        info.message_count,
                        detail.rate.map_or("-".to_owned(), per_second)
                    ),
                ),
                fact("supervisor", optional(&info.supervisor)),
                fact("parent", optional(&info.parent)),
                fact(
                    "restarts",
                    info.restarts.map_or("-".to_owned(), |r| r.to_string()),
                ),
                fact(
                    "traps exits",
                    if info.trap_exit { "yes" } else { "no" }.to_owned(),
                ),
                fact("links", pids(&info.links)),
                fact("monitors", pids(&info.monitors)),
                fact("monitored by", pids(&info.monitored_by)),
                fact("watches nodes", words(&info.monitored_nodes)),
                fact("global names", words(&info.global_names)),
                fact("groups", words(&info.groups)),
                fact("timers", info.timers.to_string()),
            ]
        }
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(title)),
        facts,
    );

    let data: Vec<u64> = detail.history.iter().copied().collect();
    let peak = data.iter().copied().max().unwrap_or(0);
    let now = data.last().copied().unwrap_or(0);
    let title = format!(
        " Mailbox length, last {} of {HISTORY} readings: now {now}, peak {peak} ",
        data.len()
    );
    frame.render_widget(
        Sparkline::default()
            .data(&data)
            .max(peak.max(1))
            .block(Block::bordered().title(title)),
        chart,
    );
}

fn fact(label: &str, value: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(
            format!("{label:>14}  "),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(value),
    ])
}
