//! The distributed worker pool: a supervisor node holds a task queue (`task-queue`) and a
//! result collector (`results`) under global names, and a `DistributedSupervisor` of workers
//! placed on the worker nodes; workers ask the queue for tasks, do them (at their speed)
//! and report them; when a worker node dies, its tasks go back to the queue and its
//! workers start again on the surviving nodes.
//!
//! ```text
//! cargo run -p examples --bin worker_pool                # the demo (three OS processes)
//! cargo run -p examples --bin worker_pool -- supervisor --port 4370
//! cargo run -p examples --bin worker_pool -- worker --name worker1 --seed supervisor@127.0.0.1:4370
//! ```
//!
//! The demo starts the supervisor node in this process and two worker nodes as processes
//! of this program, adds four workers, submits a batch, kills one worker node with SIGKILL
//! halfway through, shows the workers moving, and prints a summary; it exits 0 only if
//! every task was completed exactly once. Interactive nodes read commands on stdin
//! (`/help`). Everything stays on 127.0.0.1.

mod commands;
mod demo;
mod node;
mod pool;

use noex::supervisor::NodeSelector;

const USAGE: &str = "\
usage: worker_pool [demo]
       worker_pool help
       worker_pool supervisor [--port PORT] [--secret SECRET]
       worker_pool worker --seed NAME@HOST:PORT [--name NAME] [--port PORT] [--secret SECRET] [--headless]";

/// What the command line asks for.
enum Mode {
    Help,
    Demo,
    Supervisor,
    Worker { seed: String, headless: bool },
}

struct Options {
    mode: Mode,
    name: String,
    port: u16,
    secret: String,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let kind = args.next().unwrap_or_else(|| "demo".to_owned());
    let (mut name, mut port, mut secret, mut seed, mut headless) =
        (None, 0, node::DEFAULT_SECRET.to_owned(), None, false);
    if matches!(kind.as_str(), "help" | "-h" | "--help") {
        return Ok(help());
    }
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--name" => name = Some(value()?),
            "--port" => {
                let text = value()?;
                port = text.parse().map_err(|_| format!("bad port {text:?}"))?;
            }
            "--secret" => secret = value()?,
            "--seed" => seed = Some(value()?),
            "--headless" => headless = true,
            "-h" | "--help" => return Ok(help()),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    let mode = match kind.as_str() {
        "demo" => Mode::Demo,
        "supervisor" => Mode::Supervisor,
        "worker" => Mode::Worker {
            seed: seed.ok_or("a worker node needs --seed")?,
            headless,
        },
        other => return Err(format!("unknown mode {other:?}")),
    };
    let name = name.unwrap_or_else(|| match mode {
        Mode::Worker { .. } => format!("worker{}", std::process::id()),
        _ => "supervisor".to_owned(),
    });
    Ok(Options {
        mode,
        name,
        port,
        secret,
    })
}

/// `--help` anywhere on the line: the usage, nothing started.
fn help() -> Options {
    Options {
        mode: Mode::Help,
        name: String::new(),
        port: 0,
        secret: String::new(),
    }
}

fn main() {
    // A worker crashed on request panics: one line, not a backtrace, in the console.
    std::panic::set_hook(Box::new(|info| eprintln!("(a process panicked: {info})")));
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            std::process::exit(2);
        }
    };
    if let Mode::Help = options.mode {
        println!("{USAGE}");
        return;
    }
    let result = smol::block_on(async {
        match options.mode {
            Mode::Help => Ok(()),
            Mode::Demo => demo::run().await,
            Mode::Supervisor => {
                let node = node::start(&options.name, options.port, None, &options.secret).await?;
                println!("listening as {}", node.local_node_id().expect("clustered"));
                let pool =
                    node::SupervisorNode::start(node.clone(), NodeSelector::RoundRobin).await?;
                commands::supervisor(pool).await;
                node.shutdown();
                Ok(())
            }
            Mode::Worker { seed, headless } => {
                let node =
                    node::start(&options.name, options.port, Some(&seed), &options.secret).await?;
                println!("listening as {}", node.local_node_id().expect("clustered"));
                if headless {
                    // Runs until killed.
                    std::future::pending::<()>().await;
                }
                commands::worker(node.clone()).await;
                node.shutdown();
                Ok(())
            }
        }
    });
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}
