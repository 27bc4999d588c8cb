//! The typed half of a process: its mailbox of calls, casts and infos.

use std::any::Any;
use std::sync::Arc;

use super::reply::{Failure, ReplyTo};
use super::{GenServer, Info};
use crate::dist::remote::RemoteDelivery;
use crate::dist::wire::RemoteOutcome;
use crate::process::mailbox::Mailbox;
use crate::process::{AnyProcess, Core, Identity, SystemInfo};

/// One message in a server's mailbox.
pub(crate) enum Envelope<B: GenServer> {
    Call(B::Call, ReplyTo<B::Reply>),
    Cast(B::Cast),
    Info(Info<B::Info>),
}

/// A process running behaviour `B`: its shared core plus its typed mailbox.
pub(crate) struct Process<B: GenServer> {
    pub(crate) core: Core,
    pub(crate) mailbox: Mailbox<Envelope<B>>,
}

impl<B: GenServer> Process<B> {
    pub(crate) fn new(id: Identity) -> Self {
        Process {
            core: Core::new(id),
            mailbox: Mailbox::new(),
        }
    }

    /// Queues a message and wakes the process, or hands the message back if it has ended.
    pub(crate) fn deliver(&self, envelope: Envelope<B>) -> Result<(), Envelope<B>> {
        self.mailbox.push(envelope)?;
        self.core.waker.wake();
        Ok(())
    }
}

impl<B: GenServer> AnyProcess for Process<B> {
    fn core(&self) -> &Core {
        &self.core
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }

    fn mailbox_len(&self) -> usize {
        self.mailbox.len()
    }

    fn deliver_system(&self, info: SystemInfo) -> bool {
        let info = match info {
            SystemInfo::Exit { from, reason } => Info::Exit { from, reason },
            SystemInfo::Down {
                monitor,
                pid,
                reason,
            } => Info::Down {
                monitor,
                pid,
                reason,
            },
        };
        self.deliver(Envelope::Info(info)).is_ok()
    }

    fn deliver_remote(self: Arc<Self>, delivery: RemoteDelivery) {
        let Some(codec) = B::__remote_codec() else {
            if let RemoteDelivery::Call { responder, .. } = delivery {
                let text = format!("behaviour {} is local-only", self.core.id.behavior);
                responder.respond(RemoteOutcome::Failed(text));
            }
            return;
        };
        let envelope = match delivery {
            RemoteDelivery::Call {
                behavior,
                payload,
                responder,
            } => {
                if behavior != codec.hash {
                    let found = codec.name.to_owned();
                    responder.respond(RemoteOutcome::WrongBehavior { found });
                    return;
                }
                let request = match (codec.decode_call)(&payload) {
                    Ok(request) => request,
                    Err(error) => {
                        let text = format!("the request does not decode: {error}");
                        responder.respond(RemoteOutcome::Failed(text));
                        return;
                    }
                };
                let process = self.clone();
                let encode = codec.encode_reply;
                let reply = ReplyTo::forward(move |outcome| match outcome {
                    Ok(reply) => responder.respond(match encode(&reply) {
                        Ok(bytes) => RemoteOutcome::Reply(bytes),
                        Err(error) => {
                            RemoteOutcome::Failed(format!("the reply does not encode: {error}"))
                        }
                    }),
                    Err(Failure::Unhandled) => responder.respond(RemoteOutcome::NoProc),
                    Err(Failure::Abandoned) => responder.respond_when_exited(process),
                });
                Envelope::Call(request, reply)
            }
            RemoteDelivery::Cast { behavior, .. } | RemoteDelivery::Info { behavior, .. }
                if behavior != codec.hash =>
            {
                let pid = self.core.pid();
                return tracing::warn!(%pid, "dropped a remote message meant for another behaviour");
            }
            RemoteDelivery::Cast { payload, .. } => match (codec.decode_cast)(&payload) {
                Ok(message) => Envelope::Cast(message),
                Err(error) => return tracing::warn!(%error, "dropped an undecodable remote cast"),
            },
            RemoteDelivery::Info { payload, .. } => match (codec.decode_info)(&payload) {
                Ok(message) => Envelope::Info(Info::Message(message)),
                Err(error) => {
                    return tracing::warn!(%error, "dropped an undecodable remote message")
                }
            },
        };
        // A closed mailbox drops the envelope: a call's ReplyTo then answers NoProc.
        let _ = self.deliver(envelope);
    }

    fn close_mailbox(&self) {
        // Dropping queued calls closes their reply slots: those callers see `NoProc`.
        drop(self.mailbox.close());
    }
}
