//! The checks a supervisor's spec passes before the supervisor starts or takes a child.

use super::{AutoShutdown, ChildSpec, Restart, Strategy, SupervisorSpec};

/// Checks a supervisor's spec before it starts: unique child ids, each child valid, and a
/// template exactly for `simple_one_for_one`.
pub(super) fn validate(spec: &SupervisorSpec) -> Result<(), String> {
    let mut ids = std::collections::HashSet::new();
    for child in &spec.children {
        if !ids.insert(child.id.as_str()) {
            return Err(format!("two children have the id {:?}", child.id));
        }
        validate_child(child, spec.auto_shutdown)?;
    }
    match (spec.strategy, &spec.template) {
        (Strategy::SimpleOneForOne, None) => {
            Err("a simple_one_for_one supervisor needs a child template".into())
        }
        (Strategy::SimpleOneForOne, Some(_)) if !spec.children.is_empty() => {
            Err("a simple_one_for_one supervisor takes no static children".into())
        }
        (Strategy::SimpleOneForOne, Some(_)) | (_, None) => Ok(()),
        (_, Some(_)) => Err("only a simple_one_for_one supervisor takes a child template".into()),
    }
}

/// Checks one child's spec (also for a child added to a running supervisor).
pub(super) fn validate_child(child: &ChildSpec, auto_shutdown: AutoShutdown) -> Result<(), String> {
    if child.significant && auto_shutdown == AutoShutdown::Never {
        return Err(format!(
            "child {:?} is significant but auto_shutdown is Never",
            child.id
        ));
    }
    if child.significant && child.restart == Restart::Permanent {
        return Err(format!(
            "child {:?} is significant, so it must be transient or temporary",
            child.id
        ));
    }
    Ok(())
}
