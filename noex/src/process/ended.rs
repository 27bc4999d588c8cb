//! How a process ended, as its core keeps it.

use crate::ExitReason;

/// A process's exit reason as its core keeps it: the reasons without text inline, the
/// others boxed — 16 bytes rather than an `Option<ExitReason>`'s 32, in every process.
#[derive(Default)]
pub(super) enum Ended {
    /// Still running.
    #[default]
    Not,
    Normal,
    Shutdown,
    Killed,
    NoProc,
    NoConnection,
    Timeout,
    /// A reason with text.
    With(Box<ExitReason>),
}

impl Ended {
    pub(super) fn new(reason: ExitReason) -> Ended {
        match reason {
            ExitReason::Normal => Ended::Normal,
            ExitReason::Shutdown => Ended::Shutdown,
            ExitReason::Killed => Ended::Killed,
            ExitReason::NoProc => Ended::NoProc,
            ExitReason::NoConnection => Ended::NoConnection,
            ExitReason::Timeout => Ended::Timeout,
            other => Ended::With(Box::new(other)),
        }
    }

    /// `true` once the process has ended.
    pub(super) fn is_some(&self) -> bool {
        !matches!(self, Ended::Not)
    }

    /// The exit reason, if the process has ended.
    pub(super) fn reason(&self) -> Option<ExitReason> {
        Some(match self {
            Ended::Not => return None,
            Ended::Normal => ExitReason::Normal,
            Ended::Shutdown => ExitReason::Shutdown,
            Ended::Killed => ExitReason::Killed,
            Ended::NoProc => ExitReason::NoProc,
            Ended::NoConnection => ExitReason::NoConnection,
            Ended::Timeout => ExitReason::Timeout,
            Ended::With(reason) => ExitReason::clone(reason),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_comes_back_as_it_went_in() {
        let reasons = [
            ExitReason::Normal,
            ExitReason::Shutdown,
            ExitReason::Killed,
            ExitReason::Panic("boom".into()),
            ExitReason::Error("bad".into()),
            ExitReason::NoProc,
            ExitReason::NoConnection,
            ExitReason::Timeout,
            ExitReason::Custom("mine".into()),
            ExitReason::NameConflict("name".into()),
        ];
        for reason in reasons {
            assert_eq!(Ended::new(reason.clone()).reason(), Some(reason));
        }
        assert_eq!(Ended::default().reason(), None);
        assert!(!Ended::default().is_some());
        assert_eq!(std::mem::size_of::<Ended>(), 16);
    }
}
