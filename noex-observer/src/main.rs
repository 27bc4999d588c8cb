//! `noex-observer`: joins a noex cluster as a hidden node and shows it live in the
//! terminal. See the crate docs, or `noex-observer --help`.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use noex::Node;
use noex_observer::app::{handle_key, Key};
use noex_observer::cli::{self, Parsed, USAGE};
use noex_observer::model::Model;
use noex_observer::poll::{self, Command, Poller};
use noex_observer::view;

/// How long the interface waits for a key before it looks at the model again.
const INPUT_POLL: Duration = Duration::from_millis(50);

fn main() {
    let env_secret = std::env::var("NOEX_SECRET").ok();
    let options = match cli::parse(std::env::args().skip(1), env_secret) {
        Ok(Parsed::Run(options)) => options,
        Ok(Parsed::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let node = match smol::block_on(Node::start(options.cluster_config())) {
        Ok(node) => node,
        Err(error) => {
            eprintln!("cannot start the observer's node: {error}");
            std::process::exit(1);
        }
    };
    let id = node
        .local_node_id()
        .map_or_else(|| node.name().to_owned(), |id| id.to_string());
    let model = Arc::new(Mutex::new(Model::new(id)));
    let (commands, receiver) = smol::channel::unbounded();
    let poller = node.spawn_task(poll::run(
        Poller::new(node.clone()),
        model.clone(),
        receiver,
        options.refresh,
    ));

    // ratatui::init installs a panic hook that restores the terminal first.
    let mut terminal = ratatui::init();
    let result = ui(&mut terminal, &model, &commands);
    ratatui::restore();

    model.lock().unwrap().quit = true;
    commands.close();
    drop(poller);
    node.shutdown();
    if let Err(error) = result {
        eprintln!("terminal error: {error}");
        std::process::exit(1);
    }
}

/// Draws the model whenever it changed, and hands keys to [`handle_key`], until quit.
fn ui(
    terminal: &mut ratatui::DefaultTerminal,
    model: &Mutex<Model>,
    commands: &smol::channel::Sender<Command>,
) -> io::Result<()> {
    let mut drawn = None;
    loop {
        {
            let model = model.lock().unwrap();
            if model.quit {
                return Ok(());
            }
            if drawn != Some(model.revision) {
                terminal.draw(|frame| view::render(frame, &model))?;
                drawn = Some(model.revision);
            }
        }
        if !event::poll(INPUT_POLL)? {
            continue;
        }
        match event::read()? {
            Event::Key(key) if key.kind != KeyEventKind::Release => {
                let Some(key) = translate(key) else { continue };
                let command = handle_key(&mut model.lock().unwrap(), key);
                if let Some(command) = command {
                    // The poller ends only after the interface; the channel is open.
                    let _ = commands.try_send(command);
                }
            }
            Event::Resize(..) => drawn = None,
            _ => {}
        }
    }
}

fn translate(key: KeyEvent) -> Option<Key> {
    Some(match key.code {
        KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Key::Interrupt,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        _ => return None,
    })
}
