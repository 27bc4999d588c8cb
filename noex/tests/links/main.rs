//! Links and exit signals: propagation, trapping, `Ctx::exit`, kill, unlink, `spawn_link`,
//! the parent rule, and the order of a dying process's last messages and its exit signal.

#[path = "../common/mod.rs"]
mod common;
mod order;
mod propagation;
mod signals;
mod spawn_link;
mod unlink;

use common::{crash, dead_pid, probe, run, within, Brief, Fate, ProbeCall, ProbeHandle, Seen};
use noex::{Ctx, ExitReason, GenServer, Info, Pid, ReplyTo, ServerRef, SpawnError};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn panic_reason(message: &str) -> ExitReason {
    ExitReason::Panic(message.to_owned())
}

/// A process that spawn_links [`Brief`] children and reports what it sees.
struct Parent {
    seen: async_channel::Sender<Seen>,
}

enum ParentCall {
    Ping,
    SpawnLink(Fate),
}

enum ParentReply {
    Pong,
    Spawned(Result<Pid, SpawnError<String>>),
}

impl GenServer for Parent {
    /// Where to report, and whether to trap exits.
    type Args = (async_channel::Sender<Seen>, bool);
    type Call = ParentCall;
    type Reply = ParentReply;
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(
        (seen, trap_exits): (async_channel::Sender<Seen>, bool),
        ctx: &mut Ctx<Self>,
    ) -> Result<Self, Self::InitError> {
        ctx.trap_exits(trap_exits);
        Ok(Parent { seen })
    }

    async fn handle_call(
        &mut self,
        call: ParentCall,
        reply: ReplyTo<ParentReply>,
        ctx: &mut Ctx<Self>,
    ) {
        let answer = match call {
            ParentCall::Ping => ParentReply::Pong,
            ParentCall::SpawnLink(fate) => ParentReply::Spawned(
                ctx.spawn_link::<Brief>(fate)
                    .await
                    .map(|child| child.pid().clone()),
            ),
        };
        reply.send(answer);
    }

    async fn handle_info(&mut self, info: Info<()>, _ctx: &mut Ctx<Self>) {
        let seen = match info {
            Info::Exit { from, reason } => Seen::Exit { from, reason },
            Info::Down {
                monitor,
                pid,
                reason,
            } => Seen::Down {
                monitor,
                pid,
                reason,
            },
            Info::NodeDown { node } => Seen::NodeDown(node),
            Info::Message(()) => Seen::Message(String::new()),
            _ => return,
        };
        let _ = self.seen.try_send(seen);
    }

    async fn terminate(&mut self, reason: &ExitReason, _ctx: &mut Ctx<Self>) {
        let _ = self.seen.try_send(Seen::Terminated(reason.clone()));
    }
}

struct ParentHandle {
    server: ServerRef<Parent>,
    seen: async_channel::Receiver<Seen>,
}

impl ParentHandle {
    async fn start(node: &noex::Node, trap_exits: bool) -> ParentHandle {
        let (tx, seen) = async_channel::unbounded();
        let server = node
            .spawn::<Parent>((tx, trap_exits))
            .await
            .expect("the parent starts");
        ParentHandle { server, seen }
    }

    async fn ask(&self, call: ParentCall) -> ParentReply {
        within("the parent's reply", self.server.call(call))
            .await
            .unwrap_or_else(|e| panic!("parent {} did not answer: {e}", self.server.pid()))
    }

    async fn spawn_link(&self, fate: Fate) -> Result<Pid, SpawnError<String>> {
        match self.ask(ParentCall::SpawnLink(fate)).await {
            ParentReply::Spawned(result) => result,
            ParentReply::Pong => unreachable!(),
        }
    }

    /// Returns once the parent has handled everything queued before (see `ProbeHandle::sync`).
    async fn sync(&self) {
        self.ask(ParentCall::Ping).await;
        self.ask(ParentCall::Ping).await;
    }

    async fn next_seen(&self) -> Seen {
        within("the parent to see something", self.seen.recv())
            .await
            .expect("parent's channel closed")
    }

    fn assert_saw_nothing(&self) {
        if let Ok(seen) = self.seen.try_recv() {
            panic!("parent saw {seen:?}, expected nothing");
        }
    }
}

/// Who a [`Talker`] talks to.
enum Listener {
    /// A probe that already runs.
    Given(ServerRef<common::Probe>),
    /// A probe the talker spawn_links in its `init`: the talker is its parent.
    Child(common::ProbeArgs),
}

/// Talks to one listener, then crashes or sends it an exit signal.
struct Talker {
    listener: ServerRef<common::Probe>,
}

enum Talk {
    /// Sends this many messages, then panics with "said my piece".
    SayThenCrash(u32),
    /// Sends the listener an exit signal with this reason, then a message "after the exit".
    ExitThenSay(ExitReason),
}

impl GenServer for Talker {
    type Args = Listener;
    type Call = ();
    /// The listener.
    type Reply = ServerRef<common::Probe>;
    type Cast = Talk;
    type Info = ();
    type InitError = String;

    async fn init(listener: Listener, ctx: &mut Ctx<Self>) -> Result<Self, String> {
        let listener = match listener {
            Listener::Given(listener) => listener,
            Listener::Child(args) => ctx
                .spawn_link::<common::Probe>(args)
                .await
                .map_err(|e| e.to_string())?,
        };
        Ok(Talker { listener })
    }

    async fn handle_call(
        &mut self,
        _: (),
        reply: ReplyTo<ServerRef<common::Probe>>,
        _ctx: &mut Ctx<Self>,
    ) {
        reply.send(self.listener.clone());
    }

    async fn handle_cast(&mut self, talk: Talk, ctx: &mut Ctx<Self>) {
        match talk {
            Talk::SayThenCrash(words) => {
                for n in 0..words {
                    self.listener
                        .send(format!("word {n}"))
                        .expect("the listener is running");
                }
                panic!("said my piece");
            }
            Talk::ExitThenSay(reason) => {
                assert!(ctx.exit(self.listener.pid(), reason));
                self.listener
                    .send("after the exit".to_owned())
                    .expect("the listener is running");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Abnormal and normal exits through a link
// ---------------------------------------------------------------------------------------
