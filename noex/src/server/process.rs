//! The typed half of a process: its mailbox of calls, casts and infos.

use std::any::Any;
use std::sync::Arc;

use super::reply::Slot;
use super::{GenServer, Info};
use crate::process::mailbox::Mailbox;
use crate::process::{AnyProcess, Core, Identity, SystemInfo};

/// One message in a server's mailbox.
pub(crate) enum Envelope<B: GenServer> {
    Call(B::Call, Slot<B::Reply>),
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

    fn close_mailbox(&self) {
        // Dropping queued calls closes their reply slots: those callers see `NoProc`.
        drop(self.mailbox.close());
    }
}
