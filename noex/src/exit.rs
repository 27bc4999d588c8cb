//! Why a process ended.
//!
//! Every process ends with an [`ExitReason`]. The reason travels to linked processes (as an
//! exit signal), to monitors (in [`Info::Down`](crate::Info::Down)), to callers whose request
//! was being handled ([`CallError::Exited`](crate::CallError::Exited)) and to supervisors,
//! which use [`ExitReason::is_clean`] to decide whether a `transient` child is restarted.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The reason a process ended, as in Erlang/OTP.
///
/// | reason | produced by | kills a linked, non-trapping process? |
/// |---|---|---|
/// | `Normal` | the process stopped by itself (`ctx.stop(Normal)`, a finished `stop`) | no |
/// | `Shutdown` | a supervisor or node stopping it, or a supervisor giving up | yes |
/// | `Killed` | an untrappable [`kill`](crate::Node::kill) | yes |
/// | `Panic(msg)` | a panic in `init`, a handler or `terminate` | yes |
/// | `Error(msg)` | `init` returned an error, or a handler chose to stop with an error | yes |
/// | `NoProc` | a link to a process that did not exist | yes |
/// | `NoConnection` | the node of a linked or monitored process was lost | yes |
/// | `Timeout` | a time limit ran out (for example `init` took too long) | yes |
/// | `Custom(text)` | your own reason | yes |
/// | `NameConflict(name)` | losing a global name when a partition heals | yes |
///
/// ```
/// use noex::ExitReason;
///
/// assert!(ExitReason::Normal.is_clean());
/// assert!(ExitReason::Shutdown.is_clean());
/// assert!(!ExitReason::Killed.is_clean());
/// assert_eq!(ExitReason::error("disk full").to_string(), "error: disk full");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ExitReason {
    /// The process finished its work. Never propagates through links.
    Normal,
    /// The process was asked to stop (by its supervisor, a `stop` call or node shutdown).
    Shutdown,
    /// The process was killed with an untrappable kill.
    Killed,
    /// A callback panicked; the text is the panic message.
    Panic(String),
    /// The process stopped because of an error; the text describes it.
    Error(String),
    /// The process a link or call referred to did not exist.
    NoProc,
    /// The node of a linked or monitored process was lost.
    NoConnection,
    /// A time limit ran out.
    Timeout,
    /// An application-defined reason.
    Custom(String),
    /// The process lost its global name (here, the name) to another process when two
    /// parts of a cluster that had each registered it met again (see
    /// [`Node::register_global`](crate::Node::register_global)). The process that keeps
    /// the name sends this as an exit signal.
    NameConflict(String),
}

impl ExitReason {
    /// An [`ExitReason::Error`] with the given description.
    pub fn error(description: impl fmt::Display) -> Self {
        ExitReason::Error(description.to_string())
    }

    /// `true` for [`Normal`](ExitReason::Normal) and [`Shutdown`](ExitReason::Shutdown): the
    /// reasons that are not failures. A `transient` child that ends cleanly is not restarted.
    pub fn is_clean(&self) -> bool {
        matches!(self, ExitReason::Normal | ExitReason::Shutdown)
    }

    /// `true` for [`Normal`](ExitReason::Normal) only: the one reason that a linked,
    /// non-trapping process ignores.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::Panic(msg) => write!(f, "panic: {msg}"),
            ExitReason::Error(msg) => write!(f, "error: {msg}"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::NoConnection => f.write_str("noconnection"),
            ExitReason::Timeout => f.write_str("timeout"),
            ExitReason::Custom(text) => f.write_str(text),
            ExitReason::NameConflict(name) => write!(f, "lost the global name {name:?}"),
        }
    }
}

/// Turns a panic payload into the text of [`ExitReason::Panic`].
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}
