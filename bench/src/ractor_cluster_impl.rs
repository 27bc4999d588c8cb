//! ractor_cluster: the remote workloads between two ractor nodes.
//!
//! ractor keeps its actor registry and process groups in process-wide globals, so two
//! ractor_cluster nodes cannot be told apart inside one OS process. Node B is therefore this
//! binary re-executed as `__ractor-node <port>` (a tokio runtime with 2 worker threads, a
//! `NodeServer` on 127.0.0.1:<port>, an `Echo` and a `Sink` actor in process groups); node A
//! is this process (the same set-up), which connects with `client_connect` and finds B's
//! actors in the process groups. Messages are `#[derive(RactorClusterMessage)]` enums;
//! payloads are `Vec<u8>` (encoded as one block of bytes).
//!
//! The large message is a `#[rpc]` call with a 64 MiB `Vec<u8>` argument sent from its own
//! task; it has been handled when its (8-byte) reply arrives.

use std::io::{BufRead, Write};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::{NodeServer, RactorClusterMessage};

use crate::common::{percentile, tokio_limit, tokio_runtime, Plan, Rep, CAST_CHUNK, PHASE_LIMIT};
use crate::remote::{Remote, Step};

const COOKIE: &str = "noex-side-by-side-bench";
const ECHO_GROUP: &str = "noex_bench_echo";
const SINK_GROUP: &str = "noex_bench_sink";

#[derive(RactorClusterMessage)]
pub enum EchoMsg {
    #[rpc]
    Echo(u64, RpcReplyPort<u64>),
}

#[derive(RactorClusterMessage)]
pub enum SinkMsg {
    Take(Vec<u8>),
    #[rpc]
    TakeCount(RpcReplyPort<u64>),
    #[rpc]
    Big(Vec<u8>, RpcReplyPort<u64>),
}

pub struct Echo;

impl Actor for Echo {
    type Msg = EchoMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<EchoMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<EchoMsg>,
        message: EchoMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EchoMsg::Echo(value, reply) => {
                let _ = reply.send(value);
            }
        }
        Ok(())
    }
}

pub struct Sink;

impl Actor for Sink {
    type Msg = SinkMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<SinkMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _: ActorRef<SinkMsg>,
        message: SinkMsg,
        taken: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SinkMsg::Take(payload) => {
                std::hint::black_box(payload.len());
                *taken += 1;
            }
            SinkMsg::TakeCount(reply) => {
                let _ = reply.send(std::mem::take(taken));
            }
            SinkMsg::Big(payload, reply) => {
                let _ = reply.send(payload.len() as u64);
            }
        }
        Ok(())
    }
}

fn node_server(port: u16, name: &str) -> NodeServer {
    NodeServer::new(
        port,
        COOKIE.to_owned(),
        name.to_owned(),
        "localhost".to_owned(),
        None,
        None,
    )
    .with_listen_addr([127, 0, 0, 1].into())
    .with_max_inbound_frame_size(256 << 20)
}

fn free_port() -> Rep<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

/// Node B: `__ractor-node <port>`. Prints `ready` once listening, runs until stdin closes.
pub fn node_child(args: &[String]) -> ExitCode {
    let Some(port) = args.first().and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("usage: __ractor-node PORT");
        return ExitCode::FAILURE;
    };
    let rt = tokio_runtime();
    let started = rt.block_on(async move {
        let (_server, _) = Actor::spawn(None, node_server(port, "bench_b"), ())
            .await
            .map_err(|e| e.to_string())?;
        let (echo, _) = Actor::spawn(None, Echo, ())
            .await
            .map_err(|e| e.to_string())?;
        let (sink, _) = Actor::spawn(None, Sink, ())
            .await
            .map_err(|e| e.to_string())?;
        ractor::pg::join(ECHO_GROUP.to_owned(), vec![echo.get_cell()]);
        ractor::pg::join(SINK_GROUP.to_owned(), vec![sink.get_cell()]);
        // Wait until the listener accepts.
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok::<_, String>(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err("the listener never came up".to_owned())
    });
    if let Err(error) = started {
        eprintln!("{error}");
        return ExitCode::FAILURE;
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    while std::io::stdin()
        .lock()
        .read_line(&mut line)
        .is_ok_and(|n| n > 0)
    {
        line.clear();
    }
    std::process::exit(0);
}

/// Kills the node-B child when dropped.
struct ChildNode(Child);

impl Drop for ChildNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_child(port: u16) -> Rep<ChildNode> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = ChildNode(
        Command::new(exe)
            .args(["__ractor-node", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start node B: {e}"))?,
    );
    let stdout = child.0.stdout.take().ok_or("no stdout")?;
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    if line.trim() != "ready" {
        return Err(format!("node B did not start (said {:?})", line.trim()));
    }
    Ok(child)
}

async fn remote_member<M: ractor::Message>(group: &str) -> Result<ActorRef<M>, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = ractor::pg::get_members(&group.to_owned())
            .into_iter()
            .find(|cell| !cell.get_id().is_local());
        if let Some(cell) = found {
            return Ok(cell.into());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "node B's {group} never appeared in the process group"
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn call_echo(echo: &ActorRef<EchoMsg>, value: u64) -> Result<u64, String> {
    match echo
        .call(
            |reply| EchoMsg::Echo(value, reply),
            Some(Duration::from_secs(10)),
        )
        .await
        .map_err(|e| e.to_string())?
    {
        ractor::rpc::CallResult::Success(v) => Ok(v),
        other => Err(format!("remote call failed: {other:?}")),
    }
}

/// Small calls, sorted (ns).
async fn calls(echo: ActorRef<EchoMsg>, warmup: u64, samples: u64) -> Result<Vec<u64>, String> {
    let mut times = Vec::with_capacity(samples as usize);
    for i in 0..warmup + samples {
        let start = Instant::now();
        let answer = call_echo(&echo, i).await?;
        let elapsed = start.elapsed();
        if answer != i {
            return Err("wrong echo".into());
        }
        if i >= warmup {
            times.push(elapsed.as_nanos() as u64);
        }
    }
    times.sort_unstable();
    Ok(times)
}

async fn casts(sink: ActorRef<SinkMsg>, count: u64, size: usize) -> Result<Duration, String> {
    let payload = vec![7u8; size];
    let start = Instant::now();
    for i in 0..count {
        sink.cast(SinkMsg::Take(payload.clone()))
            .map_err(|e| e.to_string())?;
        if i % CAST_CHUNK == CAST_CHUNK - 1 {
            tokio::task::yield_now().await;
        }
    }
    let counted = match sink
        .call(SinkMsg::TakeCount, Some(PHASE_LIMIT))
        .await
        .map_err(|e| e.to_string())?
    {
        ractor::rpc::CallResult::Success(n) => n,
        other => return Err(format!("final call failed: {other:?}")),
    };
    let elapsed = start.elapsed();
    if counted != count {
        return Err(format!("the sink counted {counted} of {count} casts"));
    }
    Ok(elapsed)
}

/// One large call in flight from its own task; small calls meanwhile (ns, sorted).
async fn big(
    echo: ActorRef<EchoMsg>,
    sink: ActorRef<SinkMsg>,
    size: usize,
) -> Result<(Vec<u64>, Duration), String> {
    let done = Arc::new(AtomicBool::new(false));
    let payload = vec![0x5au8; size];
    let flag = done.clone();
    let sent = Instant::now();
    let transfer = tokio::spawn(async move {
        let result = sink
            .call(|reply| SinkMsg::Big(payload, reply), Some(PHASE_LIMIT))
            .await;
        let took = sent.elapsed();
        flag.store(true, Ordering::Release);
        match result {
            Ok(ractor::rpc::CallResult::Success(n)) if n == size as u64 => Ok(took),
            Ok(other) => Err(format!("the large call failed: {other:?}")),
            Err(e) => Err(format!("the large call failed: {e}")),
        }
    });
    let mut times = Vec::new();
    let mut i = 0;
    while !done.load(Ordering::Acquire) {
        let start = Instant::now();
        call_echo(&echo, i).await?;
        times.push(start.elapsed().as_nanos() as u64);
        i += 1;
    }
    let took = transfer.await.map_err(|e| e.to_string())??;
    times.sort_unstable();
    Ok((times, took))
}

/// Node A (this process, its own tokio runtime) connected to node B (a child process), with
/// references to B's echo and sink actors.
pub struct RactorRemote {
    // Dropped in this order: the runtime (and node A) before node B's process.
    rt: tokio::runtime::Runtime,
    echo: ActorRef<EchoMsg>,
    sink: ActorRef<SinkMsg>,
    _child: ChildNode,
}

impl RactorRemote {
    pub fn start() -> Rep<RactorRemote> {
        let port_b = free_port()?;
        let port_a = free_port()?;
        let child = start_child(port_b)?;
        let rt = tokio_runtime();
        let (echo, sink) = tokio_limit(&rt, "ractor_cluster connect", async move {
            let (server, _) = Actor::spawn(None, node_server(port_a, "bench_a"), ())
                .await
                .map_err(|e| e.to_string())?;
            ractor_cluster::client_connect(&server, ("127.0.0.1", port_b))
                .await
                .map_err(|e| e.to_string())?;
            let echo = remote_member::<EchoMsg>(ECHO_GROUP).await?;
            let sink = remote_member::<SinkMsg>(SINK_GROUP).await?;
            Ok::<_, String>((echo, sink))
        })??;
        Ok(RactorRemote {
            rt,
            echo,
            sink,
            _child: child,
        })
    }
}

impl Remote for RactorRemote {
    fn rep(&mut self, step: Step, plan: &Plan) -> Rep<Vec<f64>> {
        let (echo, sink) = (self.echo.clone(), self.sink.clone());
        let cast_rates = |size: usize, count: u64| {
            let sink = self.sink.clone();
            let elapsed = tokio_limit(&self.rt, "ractor_cluster casts", casts(sink, count, size))??;
            let rate = count as f64 / elapsed.as_secs_f64();
            Ok(vec![rate, rate * size as f64 / 1e6])
        };
        match step {
            Step::Call => {
                let (warmup, n) = (plan.call_warmup / 10, plan.remote_calls);
                let t = tokio_limit(&self.rt, "ractor_cluster calls", calls(echo, warmup, n))??;
                Ok(vec![
                    percentile(&t, 50.0) as f64 / 1e3,
                    percentile(&t, 99.0) as f64 / 1e3,
                ])
            }
            Step::Cast16 => cast_rates(16, plan.remote_casts_small),
            Step::Cast1k => cast_rates(1024, plan.remote_casts_large),
            Step::Big => {
                let (t, took) = tokio_limit(
                    &self.rt,
                    "ractor_cluster large message",
                    big(echo, sink, plan.big_size),
                )??;
                Ok(vec![
                    percentile(&t, 50.0) as f64 / 1e3,
                    percentile(&t, 99.0) as f64 / 1e3,
                    percentile(&t, 100.0) as f64 / 1e3,
                    took.as_secs_f64() * 1e3,
                ])
            }
            Step::BigVec | Step::BigMemory => Err("noex only".into()),
        }
    }
}
