//! What a spawn that did not start a process reports: the spawner's error for each answer
//! of the node asked, and the answer for each failure there.

use super::SpawnCounters;
use crate::behavior::SpawnByNameError;
use crate::dist::node_id::NodeId;
use crate::dist::outbound::PushError;
use crate::dist::wire::SpawnResult;
use crate::error::RemoteSpawnError;
use crate::SpawnOptions;

/// The spawner's error for a node's answer other than `Started`, counted.
pub(super) fn refused(
    counters: &SpawnCounters,
    node: &NodeId,
    behavior: &str,
    options: &SpawnOptions,
    error: SpawnResult,
) -> RemoteSpawnError {
    let (node, behavior) = (node.clone(), behavior.to_owned());
    let counted = match &error {
        SpawnResult::InitFailed(_)
        | SpawnResult::InitPanicked(_)
        | SpawnResult::InitTimeout
        | SpawnResult::Exited(_) => &counters.init_failed,
        _ => &counters.refused,
    };
    SpawnCounters::add(counted);
    match error {
        SpawnResult::Started(_) => unreachable!("a started spawn is no failure"),
        SpawnResult::NotFound => RemoteSpawnError::BehaviorNotFound { behavior, node },
        SpawnResult::LocalOnly => RemoteSpawnError::LocalOnly { behavior },
        SpawnResult::BadArgs { args_type, error } => RemoteSpawnError::BadArgs {
            behavior,
            node,
            args_type,
            error,
        },
        SpawnResult::InitFailed(error) => RemoteSpawnError::InitFailed {
            behavior,
            node,
            error,
        },
        SpawnResult::InitPanicked(message) => RemoteSpawnError::InitPanicked {
            behavior,
            node,
            message,
        },
        SpawnResult::InitTimeout => RemoteSpawnError::InitTimeout {
            behavior,
            node,
            timeout: options.init_timeout.unwrap_or_default(),
        },
        SpawnResult::NameTaken(holder) => RemoteSpawnError::NameTaken {
            // The local name is taken on the node itself.
            name: match holder.node() == node.as_str() && options.name.is_some() {
                true => options.name.clone(),
                false => options.global_name.clone(),
            }
            .unwrap_or_default(),
            node,
            holder,
        },
        SpawnResult::RegistrationTimeout => RemoteSpawnError::RegistrationTimeout {
            name: options.global_name.clone().unwrap_or_default(),
            node,
        },
        SpawnResult::Exited(reason) => RemoteSpawnError::Exited {
            behavior,
            node,
            reason,
        },
        SpawnResult::ShuttingDown => RemoteSpawnError::NodeShuttingDown { node },
        SpawnResult::Hidden => RemoteSpawnError::HiddenNode { node },
    }
}

/// The spawner's error for a request larger than the node takes (`error`, from
/// `Outbound::check_size`), counted as refused: the node was not asked (it would close the
/// connection over it).
pub(super) fn too_large(
    counters: &SpawnCounters,
    node: &NodeId,
    behavior: &str,
    error: PushError,
) -> RemoteSpawnError {
    SpawnCounters::add(&counters.refused);
    let PushError::TooLarge { size, limit } = error else {
        unreachable!("`check_size` refuses only what is too large")
    };
    RemoteSpawnError::TooLarge {
        behavior: behavior.to_owned(),
        node: node.clone(),
        size,
        limit,
    }
}

/// What a failed spawn by name answers.
pub(super) fn failure(error: SpawnByNameError) -> SpawnResult {
    match error {
        SpawnByNameError::NotFound(_) => SpawnResult::NotFound,
        SpawnByNameError::LocalOnly(_) => SpawnResult::LocalOnly,
        SpawnByNameError::BadArgs {
            args_type, error, ..
        } => SpawnResult::BadArgs {
            args_type: args_type.to_owned(),
            error,
        },
        SpawnByNameError::InitFailed { error, .. } => SpawnResult::InitFailed(error),
        SpawnByNameError::InitPanicked { message, .. } => SpawnResult::InitPanicked(message),
        SpawnByNameError::InitTimeout { .. } => SpawnResult::InitTimeout,
        SpawnByNameError::NameTaken { holder, .. } => SpawnResult::NameTaken(holder),
        SpawnByNameError::RegistrationTimeout { .. } => SpawnResult::RegistrationTimeout,
        SpawnByNameError::Exited { reason, .. } => SpawnResult::Exited(reason),
        // The spawner checks the name's length, and a hidden node hosts no spawns: what
        // is left is its own end.
        SpawnByNameError::GlobalName(_) | SpawnByNameError::ShuttingDown => {
            SpawnResult::ShuttingDown
        }
    }
}
