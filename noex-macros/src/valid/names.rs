//! Names and tags: what the generated code names must not clash.

use syn::ext::IdentExt;

use crate::ast::{combine, Behavior, Method};
use crate::attr::Role;

/// Two messages must not be given the same wire tag. (A given tag equal to a derived one is
/// caught when the generated code is compiled, as are two derived tags that collide.)
pub(super) fn check_tags(behavior: &Behavior, errors: &mut Option<syn::Error>) {
    let mut seen: Vec<(u32, &Method)> = Vec::new();
    for method in &behavior.methods {
        if !matches!(method.role, Role::Call | Role::Cast) {
            continue;
        }
        let (Some(tag), Some(attr)) = (&method.tag, &method.tag_attr) else {
            continue;
        };
        let Ok(value) = tag.base10_parse::<u32>() else {
            continue;
        };
        match seen.iter().find(|(other, _)| *other == value) {
            Some((_, first)) => combine(
                errors,
                syn::Error::new_spanned(
                    attr,
                    format!(
                        "wire tag {tag} is already the tag of `{}`; each message of a \
                         behaviour needs its own tag",
                        first.ident
                    ),
                ),
            ),
            None => seen.push((value, method)),
        }
    }
}

/// The inherent methods of the handles (`ServerRef`, `NamedRef`), each with the type that
/// has it. A method call on a handle finds them before the client trait's methods, so a
/// message method named like one would be hidden behind it.
const HANDLE_METHODS: &[(&str, &str)] = &[
    ("pid", "ServerRef::pid"),
    ("is_local", "ServerRef::is_local"),
    ("is_alive", "ServerRef::is_alive"),
    ("call", "ServerRef::call"),
    ("call_with_timeout", "ServerRef::call_with_timeout"),
    ("cast", "ServerRef::cast"),
    ("try_cast", "ServerRef::try_cast"),
    ("cast_wait", "ServerRef::cast_wait"),
    ("send", "ServerRef::send"),
    ("stop", "ServerRef::stop"),
    ("stop_with_grace", "ServerRef::stop_with_grace"),
    ("exited", "ServerRef::exited"),
    ("name", "NamedRef::name"),
    ("resolve", "NamedRef::resolve"),
];

/// Methods of traits the handles implement: the client trait's supertrait `ServerHandle`,
/// and traits of the prelude (and `Debug`). A client method named like one would make a
/// call on a handle ambiguous, or (`into`, `try_into`, which take `self`) resolve to the
/// other trait's method.
const TRAIT_METHODS: &[(&str, &str)] = &[
    ("cast_message", "ServerHandle::cast_message"),
    ("try_cast_message", "ServerHandle::try_cast_message"),
    ("cast_message_wait", "ServerHandle::cast_message_wait"),
    ("clone", "Clone::clone"),
    ("to_owned", "ToOwned::to_owned"),
    ("clone_into", "ToOwned::clone_into"),
    ("eq", "PartialEq::eq"),
    ("ne", "PartialEq::ne"),
    ("fmt", "Debug::fmt"),
    ("into", "Into::into"),
    ("try_into", "TryInto::try_into"),
];

/// The client methods generated for a `#[call]` or `#[cast]` method besides its own name
/// (see `expand::api`).
fn generated_names(method: &Method) -> Vec<String> {
    let name = method.ident.unraw();
    match method.role {
        Role::Call => vec![format!("{name}_with_timeout")],
        Role::Cast => vec![format!("try_{name}"), format!("{name}_wait")],
        _ => Vec::new(),
    }
}

/// Refuses a message method whose client method would be hidden by a method of the
/// handles, or would clash with another client method.
///
/// Only a message method's own name is looked up in the lists above: every listed name
/// made with a generated affix (`try_cast`, `cast_wait`, `call_with_timeout`, `try_into`)
/// has its bare name (`cast`, `call`, `into`) listed too, so its generated methods cannot
/// clash with them either (the unit test below checks this).
pub(super) fn check_names(behavior: &Behavior, errors: &mut Option<syn::Error>) {
    let messages: Vec<&Method> = behavior
        .methods
        .iter()
        .filter(|m| matches!(m.role, Role::Call | Role::Cast))
        .collect();
    for method in &messages {
        let name = method.ident.unraw().to_string();
        let taken = |list: &[(&str, &'static str)]| {
            list.iter()
                .find(|(taken, _)| *taken == name)
                .map(|(_, owner)| *owner)
        };
        let clash = match (taken(HANDLE_METHODS), taken(TRAIT_METHODS)) {
            (Some(owner), _) => Some(format!("would be hidden by `{owner}`")),
            (None, Some(owner)) => Some(format!("would clash with `{owner}`")),
            (None, None) => None,
        };
        if let Some(clash) = clash {
            combine(
                errors,
                syn::Error::new_spanned(
                    &method.ident,
                    format!("a message method named `{name}` {clash}; give it another name"),
                ),
            );
        }
        for other in &messages {
            let role = match other.role {
                Role::Call => "#[call]",
                _ => "#[cast]",
            };
            if generated_names(other).contains(&name) {
                combine(
                    errors,
                    syn::Error::new_spanned(
                        &method.ident,
                        format!(
                            "`{name}` is the name of a client method generated for the {role} \
                             method `{}`; give this method another name",
                            other.ident.unraw()
                        ),
                    ),
                );
            }
        }
    }
}

/// Two message methods of one kind must not make the same variant of the generated enum
/// (`level_2` and `level2` are both `Level2`), nor, for a remote behaviour, the same wire
/// tag constant (`getX` and `getx` are both `TAG_GETX`).
pub(super) fn check_variants(behavior: &Behavior, errors: &mut Option<syn::Error>) {
    let messages: Vec<&Method> = behavior
        .methods
        .iter()
        .filter(|m| matches!(m.role, Role::Call | Role::Cast))
        .collect();
    for (index, method) in messages.iter().enumerate() {
        let variant = crate::expand::variant(method).to_string();
        let constant = method.ident.unraw().to_string().to_uppercase();
        let clash = messages[..index].iter().find_map(|other| {
            // The same name twice is for the compiler to refuse (or `#[cfg]`s to choose).
            if other.ident == method.ident {
                None
            } else if other.role == method.role && crate::expand::variant(other) == variant {
                Some((other, format!("the enum variant `{variant}`")))
            } else if behavior.local.is_none()
                && other.ident.unraw().to_string().to_uppercase() == constant
            {
                Some((other, format!("the wire tag constant `TAG_{constant}`")))
            } else {
                None
            }
        });
        if let Some((other, generated)) = clash {
            combine(
                errors,
                syn::Error::new_spanned(
                    &method.ident,
                    format!(
                        "`{}` and `{}` would both generate {generated}: rename one",
                        other.ident.unraw(),
                        method.ident.unraw()
                    ),
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The message method name that a client method named `name` would be generated for
    /// (see `generated_names`), if any.
    fn bare(name: &str) -> Option<&str> {
        name.strip_prefix("try_")
            .or_else(|| name.strip_suffix("_wait"))
            .or_else(|| name.strip_suffix("_with_timeout"))
    }

    #[test]
    fn a_taken_name_with_a_generated_affix_has_its_bare_name_taken_too() {
        let taken: Vec<&str> = HANDLE_METHODS
            .iter()
            .chain(TRAIT_METHODS)
            .map(|(name, _)| *name)
            .collect();
        for name in &taken {
            if let Some(bare) = bare(name) {
                assert!(
                    taken.contains(&bare),
                    "`{bare}` must be refused: its generated method would be `{name}`"
                );
            }
        }
    }
}
