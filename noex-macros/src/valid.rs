//! Checks of the model: every misuse becomes an error at the offending token.

use syn::ext::IdentExt;
use syn::{FnArg, GenericParam, PatType, TypeParamBound, WherePredicate};

use crate::ast::{combine, Behavior, Input, Method, Receiver};
use crate::attr::Role;

pub(crate) fn check(behavior: &Behavior) -> syn::Result<()> {
    let mut errors = None;
    check_generics(behavior, &mut errors);
    check_roles(behavior, &mut errors);
    check_tags(behavior, &mut errors);
    check_names(behavior, &mut errors);
    for method in &behavior.methods {
        check_method(method, &mut errors);
    }
    match errors {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

fn check_roles(behavior: &Behavior, errors: &mut Option<syn::Error>) {
    for role in [Role::Init, Role::Info, Role::Terminate] {
        let mut marked = behavior.methods.iter().filter(|m| m.role == role);
        let first = marked.next();
        for extra in marked {
            combine(
                errors,
                syn::Error::new_spanned(
                    &extra.marker,
                    format!(
                        "a behaviour has at most one #[{}] method; `{}` is one already",
                        role.attr_name(),
                        first.map_or(String::new(), |m| m.ident.to_string())
                    ),
                ),
            );
        }
        if role == Role::Init && first.is_none() {
            combine(
                errors,
                syn::Error::new_spanned(
                    &behavior.item.self_ty,
                    "a behaviour needs an #[init] method that builds its state, \
                     e.g. `#[init] async fn init(args: Args) -> Result<Self, Error>`",
                ),
            );
        }
    }
}

fn check_method(method: &Method, errors: &mut Option<syn::Error>) {
    let role = method.role.attr_name();
    match (method.role, method.receiver) {
        (Role::Init, Receiver::None) => {}
        (Role::Init, _) => combine(
            errors,
            match method.sig.receiver() {
                Some(receiver) => syn::Error::new_spanned(
                    receiver,
                    "#[init] builds the state, so it takes no `self`; remove this parameter",
                ),
                None => syn::Error::new_spanned(
                    &method.sig.inputs,
                    "#[init] builds the state, so it takes no `self`",
                ),
            },
        ),
        (_, Receiver::Ref | Receiver::RefMut) => {}
        (_, Receiver::Value(span)) => {
            let message = format!(
                "#[{role}] methods take `&self` or `&mut self`, not `self`: the state \
                 outlives each message"
            );
            combine(
                errors,
                match method.sig.receiver() {
                    Some(receiver) => syn::Error::new_spanned(receiver, message),
                    None => syn::Error::new(span, message),
                },
            )
        }
        (_, Receiver::None) => combine(
            errors,
            syn::Error::new_spanned(
                &method.sig.ident,
                format!("#[{role}] methods take `&self` or `&mut self`"),
            ),
        ),
    }
    if let Some(tag) = &method.tag_attr {
        if !matches!(method.role, Role::Call | Role::Cast) {
            combine(
                errors,
                syn::Error::new_spanned(
                    tag,
                    format!(
                        "#[tag] goes on a #[call] or #[cast] method, not on #[{role}]: \
                         only messages have wire tags"
                    ),
                ),
            );
        }
    }
    match method.role {
        Role::Init => {
            if method.output.is_none() {
                combine(
                    errors,
                    syn::Error::new_spanned(
                        &method.sig.ident,
                        "#[init] returns the state: `Self` or `Result<Self, Error>`",
                    ),
                );
            }
        }
        Role::Call => {
            let replies: Vec<_> = method
                .inputs
                .iter()
                .filter_map(|input| match input {
                    Input::Reply { span, .. } => Some(*span),
                    _ => None,
                })
                .collect();
            if let Some(extra) = replies.get(1) {
                combine(
                    errors,
                    syn::Error::new(*extra, "a #[call] method takes at most one `ReplyTo`"),
                );
            }
            if let (Some(_), Some(output)) = (replies.first(), &method.output) {
                combine(
                    errors,
                    syn::Error::new_spanned(
                        output,
                        "a #[call] method that takes a `ReplyTo` answers through it \
                         and returns nothing",
                    ),
                );
            }
        }
        Role::Cast => {
            if let Some(output) = &method.output {
                combine(
                    errors,
                    syn::Error::new_spanned(
                        output,
                        "#[cast] methods return nothing: a cast has no reply; \
                         to answer, make the method a #[call]",
                    ),
                );
            }
        }
        Role::Info => {
            const EXPECTED: &str =
                "an #[info] method takes `info: Info<T>` (and optionally `ctx: &mut Ctx<Self>`)";
            let has_info = method
                .inputs
                .iter()
                .any(|input| matches!(input, Input::Info { .. }));
            let mut infos = 0;
            let mut suggested = false;
            for (param, input) in typed_params(method) {
                match input {
                    Input::Info { .. } => {
                        infos += 1;
                        if infos == 2 {
                            combine(
                                errors,
                                syn::Error::new_spanned(
                                    param,
                                    format!("{EXPECTED}; this is a second `Info`"),
                                ),
                            );
                        }
                    }
                    Input::Message { name, ty } if !has_info && !suggested => {
                        suggested = true;
                        combine(
                            errors,
                            syn::Error::new_spanned(
                                param,
                                format!(
                                    "{EXPECTED}; to receive `{ty}` messages (from timers and \
                                     `send`), write `{name}: Info<{ty}>` and match \
                                     `Info::Message({name})`",
                                    ty = type_text(ty),
                                ),
                            ),
                        );
                    }
                    Input::Message { .. } => combine(
                        errors,
                        syn::Error::new_spanned(
                            param,
                            format!("{EXPECTED}; remove this parameter"),
                        ),
                    ),
                    _ => {}
                }
            }
            if !has_info && !suggested {
                combine(
                    errors,
                    syn::Error::new_spanned(
                        &method.sig.ident,
                        format!("{EXPECTED}; `{}` has no `Info<T>` parameter", method.ident),
                    ),
                );
            }
        }
        Role::Terminate => {
            for (param, input) in typed_params(method) {
                if let Input::Message { .. } = input {
                    combine(
                        errors,
                        syn::Error::new_spanned(
                            param,
                            "a #[terminate] method takes `reason: &ExitReason` (and optionally \
                             `ctx: &mut Ctx<Self>`); remove this parameter",
                        ),
                    );
                }
            }
        }
    }
}

/// A type as the user would write it (`Vec<u8>`, not `Vec < u8 >`), for messages.
fn type_text(ty: &syn::Type) -> String {
    let text = quote::ToTokens::to_token_stream(ty).to_string();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' {
            let prev = out.chars().last();
            let next = chars.peek().copied();
            let glued = matches!(prev, Some('<' | '&' | ':' | '(' | '['))
                || matches!(next, Some('<' | '>' | ',' | ':' | ')' | ']'));
            if glued {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The method's typed parameters (all but `self`), each with what it was parsed as.
fn typed_params(method: &Method) -> impl Iterator<Item = (&PatType, &Input)> {
    method
        .sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(typed) => Some(typed),
            FnArg::Receiver(_) => None,
        })
        .zip(&method.inputs)
}

/// Two messages must not be given the same wire tag. (A given tag equal to a derived one is
/// caught when the generated code is compiled, as are two derived tags that collide.)
fn check_tags(behavior: &Behavior, errors: &mut Option<syn::Error>) {
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

/// Method names that `ServerRef` or `NamedRef` already have: a message method with one of
/// these names would be hidden behind them.
const TAKEN: &[&str] = &[
    "call",
    "call_timeout",
    "cast",
    "send",
    "stop",
    "stop_with_grace",
    "pid",
    "exited",
    "is_alive",
    "resolve",
    "name",
    "clone",
    "eq",
    "ne",
    "fmt",
    "call_with_timeout",
    "cast_message",
    "try_cast",
    "cast_wait",
    "try_cast_message",
    "cast_message_wait",
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
fn check_names(behavior: &Behavior, errors: &mut Option<syn::Error>) {
    let messages: Vec<&Method> = behavior
        .methods
        .iter()
        .filter(|m| matches!(m.role, Role::Call | Role::Cast))
        .collect();
    for method in &messages {
        let name = method.ident.unraw().to_string();
        if TAKEN.contains(&name.as_str()) {
            combine(
                errors,
                syn::Error::new_spanned(
                    &method.ident,
                    format!(
                        "a message method named `{name}` would be hidden by \
                         `ServerRef::{name}`; give it another name"
                    ),
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

/// A generic behaviour must be local-only, and its type parameters `Send + 'static`.
fn check_generics(behavior: &Behavior, errors: &mut Option<syn::Error>) {
    let generics = &behavior.item.generics;
    if generics.params.is_empty() {
        return;
    }
    if behavior.local.is_none() {
        combine(
            errors,
            syn::Error::new_spanned(
                &generics.params,
                "a generic behaviour must be local-only: write #[behavior(local)] on this \
                 impl block (spawning by name needs one concrete type per behaviour name)",
            ),
        );
    }
    for param in &generics.params {
        match param {
            GenericParam::Lifetime(lifetime) => combine(
                errors,
                syn::Error::new_spanned(
                    lifetime,
                    "a behaviour's state lives in its own process and cannot borrow: \
                     remove the lifetime parameter",
                ),
            ),
            GenericParam::Type(param) => {
                let mut bounds: Vec<&TypeParamBound> = param.bounds.iter().collect();
                if let Some(where_clause) = &generics.where_clause {
                    for predicate in &where_clause.predicates {
                        if let WherePredicate::Type(predicate) = predicate {
                            if is_param(&predicate.bounded_ty, &param.ident) {
                                bounds.extend(predicate.bounds.iter());
                            }
                        }
                    }
                }
                let has_send = bounds.iter().any(|b| match b {
                    TypeParamBound::Trait(t) => {
                        t.path.segments.last().is_some_and(|s| s.ident == "Send")
                    }
                    _ => false,
                });
                let has_static = bounds.iter().any(|b| match b {
                    TypeParamBound::Lifetime(l) => l.ident == "static",
                    _ => false,
                });
                if !(has_send && has_static) {
                    combine(
                        errors,
                        syn::Error::new(
                            param.ident.span(),
                            format!(
                                "the type parameter `{0}` of a behaviour must be \
                                 `Send + 'static`: the state moves into its own process; \
                                 write `{0}: Send + 'static`",
                                param.ident
                            ),
                        ),
                    );
                }
            }
            GenericParam::Const(_) => {}
        }
    }
}

fn is_param(ty: &syn::Type, ident: &syn::Ident) -> bool {
    matches!(ty, syn::Type::Path(path) if path.qself.is_none() && path.path.is_ident(ident))
}
