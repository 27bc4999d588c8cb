//! Checks of the model: every misuse becomes an error at the offending token.

use syn::{GenericParam, TypeParamBound, WherePredicate};

use crate::ast::{combine, type_text, Behavior, Input, Method, Receiver};
use crate::attr::Role;

mod names;
mod types;

use names::{check_names, check_tags, check_variants};
use types::{check_message_types, typed_params};

pub(crate) fn check(behavior: &Behavior) -> syn::Result<()> {
    let mut errors = None;
    check_generics(behavior, &mut errors);
    check_roles(behavior, &mut errors);
    check_tags(behavior, &mut errors);
    check_names(behavior, &mut errors);
    check_variants(behavior, &mut errors);
    // A lifetime parameter is refused in `check_generics`: the references that use it are
    // that one error.
    let borrows = behavior.item.generics.lifetimes().next().is_some();
    for method in &behavior.methods {
        check_method(method, &mut errors);
        if !borrows {
            check_message_types(method, &mut errors);
        }
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
            let message = if behavior.methods.is_empty() {
                "a behaviour needs an #[init] method that builds its state, \
                 e.g. `#[init] async fn init(args: Args) -> Result<Self, Error>`"
            } else {
                // Perhaps a second `#[behavior]` block of a behaviour.
                "this #[behavior] impl block has no #[init] method; a behaviour has exactly \
                 one #[behavior] impl block, with its #[init] and all its messages: add an \
                 #[init] here (e.g. `#[init] async fn init(args: Args) -> Result<Self, \
                 Error>`), or move these methods into the block that has one"
            };
            combine(
                errors,
                syn::Error::new_spanned(&behavior.item.self_ty, message),
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
    let generics = &method.sig.generics;
    if generics
        .params
        .iter()
        .any(|param| !matches!(param, GenericParam::Lifetime(_)))
    {
        combine(
            errors,
            syn::Error::new_spanned(
                generics,
                format!(
                    "a #[{role}] method cannot have type or const parameters: its arguments \
                     are the fields of one message type; name their types"
                ),
            ),
        );
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
