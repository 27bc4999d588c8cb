//! Drawing the [`Model`]: a header with the view tabs, the view itself, a status line and
//! the keys, and the confirmation of a pending action on top.
//!
//! Every function here reads the model and nothing else, so what the screen shows can be
//! checked by rendering a hand-made model into ratatui's `TestBackend`:
//!
//! ```
//! use noex_observer::model::{Model, NodeRow};
//! use ratatui::{backend::TestBackend, Terminal};
//!
//! let mut model = Model::new("observer@127.0.0.1:4400");
//! model.nodes.push(NodeRow { id: "a@127.0.0.1:4370".into(), processes: 3, ..NodeRow::default() });
//! let mut terminal = Terminal::new(TestBackend::new(120, 30)).unwrap();
//! terminal.draw(|frame| noex_observer::view::render(frame, &model)).unwrap();
//! let text = noex_observer::view::buffer_text(terminal.backend().buffer());
//! assert!(text.contains("a@127.0.0.1:4370"));
//! ```

mod detail;
mod nodes;
mod processes;
mod tree;

use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::model::{Action, Model, View};

/// The marker of the selected row.
pub const SELECTED: &str = "> ";

/// Draws the whole screen.
pub fn render(frame: &mut Frame, model: &Model) {
    let [header, body, status, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(header_line(model), header);
    match model.view {
        View::Nodes => nodes::render(frame, body, model),
        View::Processes => processes::render(frame, body, model),
        View::Tree => tree::render(frame, body, model),
        View::Detail => detail::render(frame, body, model),
    }
    frame.render_widget(status_line(model), status);
    frame.render_widget(
        Line::from(" 1-4/Tab view  ↑↓/j k select  Enter detail  s sort  K kill  x stop  q quit")
            .style(Style::new().add_modifier(Modifier::DIM)),
        keys,
    );
    if model.confirm.is_some() {
        confirm(frame, model);
    }
}

fn header_line(model: &Model) -> Line<'static> {
    let mut spans = vec![
        Span::styled(" noex-observer ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(format!("{}  ", model.observer)),
    ];
    for (i, view) in View::ALL.iter().enumerate() {
        let title = format!("{} {}", i + 1, view.title());
        if *view == model.view {
            spans.push(Span::styled(
                format!("[{title}]"),
                Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
            ));
        } else {
            spans.push(Span::raw(format!(" {title} ")));
        }
        spans.push(Span::raw(" "));
    }
    Line::from(spans)
}

fn status_line(model: &Model) -> Line<'static> {
    if !model.errors.is_empty() {
        return Line::from(format!(" ! {}", model.errors.join("; ")))
            .style(Style::new().add_modifier(Modifier::BOLD));
    }
    if model.nodes.is_empty() {
        return Line::from(" waiting for the seeds to answer…");
    }
    if !model.status.is_empty() {
        return Line::from(format!(" {}", model.status));
    }
    let up = model
        .nodes
        .iter()
        .filter(|n| n.state == crate::model::NodeState::Up)
        .count();
    Line::from(format!(
        " {} nodes ({up} up), refreshed {} times",
        model.nodes.len(),
        model.refreshes
    ))
}

fn confirm(frame: &mut Frame, model: &Model) {
    let Some(confirm) = &model.confirm else {
        return;
    };
    let who = match &confirm.name {
        Some(name) => format!("{} ({name})", confirm.pid),
        None => confirm.pid.to_string(),
    };
    let (title, question, effect) = match confirm.action {
        Action::Kill => (
            " Kill ",
            format!("Kill {who}?"),
            "It ends at once (exit reason kill), without cleaning up.",
        ),
        Action::Stop => (
            " Stop ",
            format!("Stop {who}?"),
            "It is asked to stop with reason shutdown, and may clean up.",
        ),
    };
    let text = vec![
        Line::from(question).style(Style::new().add_modifier(Modifier::BOLD)),
        Line::from(effect),
        Line::from(""),
        Line::from("y: yes    n / Esc: no"),
    ];
    let area = centered(frame.area(), 70, 6);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(title)),
        area,
    );
}

/// A `width` × `height` rectangle in the middle of `area` (smaller if `area` is).
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// The text of a rendered buffer, one line per row, trailing spaces trimmed: what a test
/// asserts on.
pub fn buffer_text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut text = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        for x in area.left()..area.right() {
            line.push_str(buffer[(x, y)].symbol());
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// A count per second, short: `0`, `4.5`, `120`, `3.4k`, `1.2M`.
pub fn per_second(value: f64) -> String {
    if value <= 0.0 {
        "0".to_owned()
    } else if value < 10.0 {
        format!("{value:.1}")
    } else if value < 1000.0 {
        format!("{value:.0}")
    } else if value < 1e6 {
        format!("{:.1}k", value / 1e3)
    } else if value < 1e9 {
        format!("{:.1}M", value / 1e6)
    } else {
        format!("{:.1}G", value / 1e9)
    }
}

/// A length of time, short: `42s`, `3m 07s`, `2h 05m`, `4d 03h`.
pub fn uptime(duration: Duration) -> String {
    let s = duration.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// A round-trip time: `0.21 ms`, `14 ms`; `-` if unknown.
pub fn round_trip(rtt: Option<Duration>) -> String {
    match rtt {
        None => "-".to_owned(),
        Some(rtt) => {
            let ms = rtt.as_secs_f64() * 1e3;
            if ms < 10.0 {
                format!("{ms:.2} ms")
            } else {
                format!("{ms:.0} ms")
            }
        }
    }
}

/// A type name without its module path: `examples::pool::Worker` → `Worker`.
pub fn short_type(name: &str) -> &str {
    let base = name.split('<').next().unwrap_or(name);
    match base.rfind("::") {
        Some(at) => &name[at + 2..],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(per_second(0.0), "0");
        assert_eq!(per_second(4.54), "4.5");
        assert_eq!(per_second(120.2), "120");
        assert_eq!(per_second(3400.0), "3.4k");
        assert_eq!(uptime(Duration::from_secs(187)), "3m 07s");
        assert_eq!(uptime(Duration::from_secs(7500)), "2h 05m");
        assert_eq!(round_trip(Some(Duration::from_micros(210))), "0.21 ms");
        assert_eq!(short_type("examples::pool::Worker"), "Worker");
        assert_eq!(short_type("a::Sup<b::C>"), "Sup<b::C>");
    }
}
