//! The agent: a system process on every clustered node that answers observers of other
//! nodes, one request at a time (so a busy observer costs the node one request's work at
//! a time, never a pile of them).

use serde::{Deserialize, Serialize};

use super::types::{
    GlobalInfo, NodeOverview, PeerList, ProcessDetail, ProcessList, ProcessQuery, SupervisorInfo,
};
use crate::behavior::{BehaviorName, RemoteBehavior};
use crate::server::{Ctx, GenServer, ReplyTo};
use crate::Pid;

/// The name the agent is registered under on its node.
pub(crate) const AGENT_NAME: &str = "noex.observer";

/// The agent's state: none (it reads its node through its `Ctx`).
pub(crate) struct Agent;

/// What an observer asks.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    Overview,
    /// The query, and the asking node's incarnation (its message rates are its own).
    Processes(ProcessQuery, u64),
    Process(Pid),
    Supervisors,
    Globals,
    Peers,
}

/// What the agent answers, one variant per request.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Answer {
    Overview(Box<NodeOverview>),
    Processes(ProcessList),
    Process(Option<Box<ProcessDetail>>),
    Supervisors(Vec<SupervisorInfo>),
    Globals(GlobalInfo),
    Peers(PeerList),
}

impl GenServer for Agent {
    type Args = ();
    type Call = Request;
    type Reply = Answer;
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Agent)
    }

    async fn handle_call(&mut self, request: Request, reply: ReplyTo<Answer>, ctx: &mut Ctx<Self>) {
        let node = ctx.node();
        let answer = match request {
            Request::Overview => Answer::Overview(Box::new(node.read_overview().await)),
            Request::Processes(query, observer) => {
                Answer::Processes(node.read_processes(query, observer).await)
            }
            Request::Process(pid) => Answer::Process(node.read_process(&pid).await.map(Box::new)),
            Request::Supervisors => Answer::Supervisors(node.read_supervisors().await),
            Request::Globals => Answer::Globals(node.read_globals()),
            Request::Peers => Answer::Peers(node.read_peers()),
        };
        reply.send(answer);
    }

    fn __remote_codec() -> Option<crate::dist::remote::Codec<Self>> {
        Some(crate::dist::remote::codec::<Self>())
    }
}

impl BehaviorName for Agent {
    const NAME: &'static str = "noex::observe::Agent";
}

impl RemoteBehavior for Agent {
    const TAGS: &'static [(&'static str, u32)] = &[];

    fn codec() -> crate::dist::remote::Codec<Self> {
        crate::dist::remote::codec::<Self>()
    }
}
