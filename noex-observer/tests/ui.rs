//! The views rendered from models filled by hand (into ratatui's test backend, asserting
//! on the text), and what the keys do to the model.

mod common;

use std::time::Duration;

use common::pid;
use noex_observer::app::{handle_key, Key};
use noex_observer::model::{
    Action, Confirm, Detail, DetailInfo, Model, NodeRow, NodeState, PeerRow, ProcessRow, Rates,
    Sort, TreeKind, TreeRow, View,
};
use noex_observer::poll::Command;
use noex_observer::view::{buffer_text, render};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const A: &str = "alpha@127.0.0.1:4370";
const B: &str = "beta@127.0.0.1:4371";

fn screen(model: &Model) -> String {
    let mut terminal = Terminal::new(TestBackend::new(140, 40)).unwrap();
    terminal.draw(|frame| render(frame, model)).unwrap();
    buffer_text(terminal.backend().buffer())
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
}

fn process(serial: u64, name: Option<&str>, mailbox_len: usize, rate: f64) -> ProcessRow {
    ProcessRow {
        pid: pid(B, serial),
        name: name.map(str::to_owned),
        global_name: None,
        behavior: "my_app::Worker".to_owned(),
        status: if mailbox_len > 0 { "busy" } else { "idle" }.to_owned(),
        mailbox_len,
        message_count: 1000 + serial,
        rate: Some(rate),
        restarts: None,
    }
}

fn model_with_processes() -> Model {
    let mut model = Model::new("observer@127.0.0.1:4400");
    model.nodes = vec![
        NodeRow {
            id: A.to_owned(),
            ..NodeRow::default()
        },
        NodeRow {
            id: B.to_owned(),
            ..NodeRow::default()
        },
    ];
    model.selected_node = Some(B.to_owned());
    model.view = View::Processes;
    model.processes_of = Some(B.to_owned());
    model.process_total = 3;
    model.processes = vec![
        process(1, Some("queue"), 2, 900.0),
        process(2, Some("backlogged"), 40, 3.0),
        process(3, None, 0, 50.0),
    ];
    model.processes[2].global_name = Some("results".to_owned());
    model.sort_processes();
    model
}

#[test]
fn the_nodes_view_lists_every_node_with_its_state_and_rates_and_the_peers_of_the_selected_one() {
    let mut model = Model::new("observer@127.0.0.1:4400");
    model.nodes = vec![
        NodeRow {
            id: A.to_owned(),
            state: NodeState::Up,
            uptime: Duration::from_secs(187),
            threads: 2,
            processes: 12,
            handled: 4200.0,
            queued: 7,
            traffic: Rates {
                messages_in: 310.0,
                messages_out: 290.0,
                bytes_in: 45_000.0,
                bytes_out: 1_200_000.0,
            },
            round_trip: Some(Duration::from_micros(420)),
        },
        NodeRow {
            id: B.to_owned(),
            state: NodeState::Down,
            ..NodeRow::default()
        },
    ];
    model.peers_of = Some(A.to_owned());
    model.peers = vec![
        PeerRow {
            id: B.to_owned(),
            rates: Rates {
                messages_in: 12.0,
                ..Rates::default()
            },
            ..PeerRow::default()
        },
        PeerRow {
            id: "observer@127.0.0.1:4400".to_owned(),
            hidden: true,
            ..PeerRow::default()
        },
    ];

    let text = screen(&model);

    assert!(text.contains("[1 Nodes]"), "{text}");
    let alpha = line_with(&text, A);
    for value in [
        "up", "3m 07s", "12", "4.2k", "310", "45.0k", "1.2M", "0.42 ms",
    ] {
        assert!(alpha.contains(value), "{value:?} missing from {alpha:?}");
    }
    assert!(
        alpha.contains("> "),
        "the first node is the selected one: {alpha:?}"
    );
    assert!(line_with(&text, B).contains("down"));
    assert!(text.contains(&format!("Connections of {A}")), "{text}");
    let peer_b = text.lines().filter(|line| line.contains(B)).nth(1).unwrap();
    assert!(peer_b.contains("12/0"), "{text}");
    assert!(text.contains("observer@127.0.0.1:4400 (hidden)"), "{text}");
}

#[test]
fn the_processes_view_shows_names_and_marks_the_column_it_is_sorted_by() {
    let mut model = model_with_processes();

    let text = screen(&model);
    assert!(
        text.contains(&format!("Processes of {B}: 3 of 3, by mailbox length")),
        "{text}"
    );
    assert!(text.contains("MAILBOX▼"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("<beta@")).collect();
    assert!(
        rows[0].contains("backlogged") && rows[0].contains("40"),
        "{rows:?}"
    );
    assert!(rows[1].contains("queue"), "{rows:?}");
    assert!(rows[2].contains("results (global)"), "{rows:?}");
    assert!(rows[0].contains("Worker") && !rows[0].contains("my_app::"));

    model.sort = Sort::MessageRate;
    model.sort_processes();
    let text = screen(&model);
    assert!(
        text.contains("MSG/S▼") && !text.contains("MAILBOX▼"),
        "{text}"
    );
    assert!(text.contains("by message rate"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("<beta@")).collect();
    assert!(
        rows[0].contains("queue") && rows[0].contains("900"),
        "{rows:?}"
    );
}

#[test]
fn the_supervision_view_indents_children_under_their_supervisor() {
    let mut model = Model::new("observer@127.0.0.1:4400");
    model.view = View::Tree;
    let row = |depth, label: &str, serial, kind| TreeRow {
        depth,
        label: label.to_owned(),
        pid: Some(pid(A, serial)),
        node: Some(A.to_owned()),
        kind,
        restarts: 0,
        restarting: false,
    };
    let sup = TreeKind::Supervisor {
        distributed: false,
        answered: true,
    };
    model.tree = vec![
        row(0, "app", 1, sup),
        row(1, "db", 2, sup),
        row(2, "conn-1", 3, TreeKind::Worker),
        row(1, "web", 4, TreeKind::Worker),
    ];
    model.tree[3].restarts = 2;

    let text = screen(&model);

    let column = |label: &str| {
        line_with(&text, &format!(" {label}  "))
            .find(label)
            .unwrap()
    };
    assert!(column("app") < column("db"), "{text}");
    assert!(column("db") < column("conn-1"), "{text}");
    assert_eq!(column("db"), column("web"), "{text}");
    assert!(
        line_with(&text, "db").contains("├── db  supervisor"),
        "{text}"
    );
    assert!(
        line_with(&text, "conn-1").contains("│   └── conn-1  worker"),
        "{text}"
    );
    assert!(
        line_with(&text, "web").contains("└── web  worker"),
        "{text}"
    );
    assert!(line_with(&text, "web").contains("restarts 2"), "{text}");
    assert!(line_with(&text, "app").contains("> "), "{text}");
}

#[test]
fn the_detail_view_shows_ties_and_the_mailbox_length_as_a_sparkline() {
    let mut model = Model::new("observer@127.0.0.1:4400");
    model.view = View::Detail;
    let mut detail = Detail::new(pid(B, 7));
    detail.info = Some(DetailInfo {
        name: Some("cache".to_owned()),
        behavior: "my_app::Cache".to_owned(),
        status: "busy".to_owned(),
        mailbox_len: 9,
        message_count: 1234,
        links: vec![pid(A, 3)],
        monitored_by: vec![pid(A, 4), pid(A, 5)],
        global_names: vec!["the-cache".to_owned()],
        ..DetailInfo::default()
    });
    detail.rate = Some(42.0);
    for sample in [0, 1, 3, 8, 9, 4, 9] {
        detail.record(sample);
    }
    model.detail = Some(detail);

    let text = screen(&model);

    assert!(text.contains(&format!("Process <{B}.7>")), "{text}");
    assert!(line_with(&text, "name").contains("cache"));
    assert!(line_with(&text, "handled").contains("1234 messages, 42/s"));
    assert!(line_with(&text, "links").contains(&format!("<{A}.3>")));
    assert!(line_with(&text, "monitored by").contains(&format!("<{A}.4> <{A}.5>")));
    assert!(line_with(&text, "global names").contains("the-cache"));
    assert!(
        text.contains("Mailbox length, last 7 of 60 readings: now 9, peak 9"),
        "{text}"
    );
    assert!(text.contains('█'), "the sparkline's bars are drawn: {text}");
}

#[test]
fn a_kill_waits_for_a_yes_and_a_no_cancels_it() {
    let mut model = model_with_processes();
    let first = model.processes[0].pid.clone();

    // K asks, showing the prompt; nothing is sent yet.
    assert_eq!(handle_key(&mut model, Key::Char('K')), None);
    assert_eq!(
        model.confirm,
        Some(Confirm {
            action: Action::Kill,
            pid: first.clone(),
            name: Some("backlogged".to_owned()),
        })
    );
    let text = screen(&model);
    assert!(
        text.contains(&format!("Kill {first} (backlogged)?")),
        "{text}"
    );
    assert!(text.contains("y: yes"), "{text}");

    // Other keys leave the question open; n cancels it.
    assert_eq!(handle_key(&mut model, Key::Char('j')), None);
    assert!(model.confirm.is_some());
    assert_eq!(handle_key(&mut model, Key::Char('n')), None);
    assert!(model.confirm.is_none());
    assert!(!screen(&model).contains("y: yes"));

    // x on the next process, then y, sends the stop.
    handle_key(&mut model, Key::Down);
    let second = model.processes[1].pid.clone();
    handle_key(&mut model, Key::Char('x'));
    assert!(screen(&model).contains(&format!("Stop {second} (queue)?")));
    assert_eq!(
        handle_key(&mut model, Key::Char('y')),
        Some(Command::Act(Action::Stop, second))
    );
    assert!(model.confirm.is_none());
}

#[test]
fn keys_switch_views_sort_and_open_the_selected_process() {
    let mut model = model_with_processes();

    assert_eq!(
        handle_key(&mut model, Key::Char('s')),
        Some(Command::Refresh)
    );
    assert_eq!(model.sort, Sort::MessageRate);
    assert_eq!(model.processes[0].name.as_deref(), Some("queue"));

    handle_key(&mut model, Key::Char('j'));
    assert_eq!(handle_key(&mut model, Key::Enter), Some(Command::Refresh));
    assert_eq!(model.view, View::Detail);
    assert_eq!(model.detail.as_ref().unwrap().pid, model.processes[1].pid);

    assert_eq!(
        handle_key(&mut model, Key::Char('1')),
        Some(Command::Refresh)
    );
    assert_eq!(model.view, View::Nodes);
    handle_key(&mut model, Key::Char('k'));
    assert_eq!(model.selected_node.as_deref(), Some(A));
    handle_key(&mut model, Key::Tab);
    assert_eq!(model.view, View::Processes);
    handle_key(&mut model, Key::Char('q'));
    assert!(model.quit);
}
