//! Checks of the model: every misuse becomes an error at the offending token.

use syn::ext::IdentExt;
use syn::visit::Visit;
use syn::{FnArg, GenericParam, PatType, Type, TypeParamBound, WherePredicate};

use crate::ast::{combine, type_text, Behavior, Input, Method, Receiver};
use crate::attr::Role;

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

/// What a message type is, for the errors about it.
#[derive(Clone, Copy)]
enum Carried {
    Argument,
    Reply,
    Info,
}

/// Refuses a type that travels in a message but borrows (`&str`), is not named
/// (`impl Trait`) or is left to inference (`_`): each is one error at that type, where the
/// compiler would give several about the generated code.
fn check_message_types(method: &Method, errors: &mut Option<syn::Error>) {
    let mut types: Vec<(&Type, Carried)> = Vec::new();
    for input in &method.inputs {
        match input {
            // Those of #[info] and #[terminate] are refused in `check_method`.
            Input::Message { ty, .. } if !matches!(method.role, Role::Info | Role::Terminate) => {
                types.push((ty, Carried::Argument));
            }
            Input::Reply { ty, .. } => types.push((ty, Carried::Reply)),
            Input::Info { ty } => types.push((ty, Carried::Info)),
            _ => {}
        }
    }
    if method.role == Role::Call {
        if let Some(output) = &method.output {
            types.push((output, Carried::Reply));
        }
    }
    for (ty, carried) in types {
        let mut find = Unowned(None);
        find.visit_type(ty);
        if let Some(found) = find.0 {
            combine(errors, unowned_error(found, carried));
        }
    }
}

/// Finds the first reference (but `&'static`), `impl Trait` or `_` in a type, but not in the
/// arguments of a function type (`fn(&str)`, `Box<dyn Fn(&str) + Send>` own no borrowed data).
struct Unowned<'ast>(Option<&'ast Type>);

impl<'ast> Visit<'ast> for Unowned<'ast> {
    fn visit_type(&mut self, ty: &'ast Type) {
        if self.0.is_some() {
            return;
        }
        match ty {
            // `&'static str` borrows nothing that could end (`Sender<&'static str>`).
            Type::Reference(reference)
                if reference
                    .lifetime
                    .as_ref()
                    .is_some_and(|lifetime| lifetime.ident == "static") =>
            {
                syn::visit::visit_type(self, ty);
            }
            Type::Reference(_) | Type::ImplTrait(_) | Type::Infer(_) => self.0 = Some(ty),
            Type::BareFn(_) | Type::Macro(_) => {}
            _ => syn::visit::visit_type(self, ty),
        }
    }

    fn visit_parenthesized_generic_arguments(
        &mut self,
        _: &'ast syn::ParenthesizedGenericArguments,
    ) {
    }
}

fn unowned_error(ty: &Type, carried: Carried) -> syn::Error {
    let (what, owner) = match carried {
        Carried::Argument => ("a message", "the process"),
        Carried::Reply => ("a reply", "the caller"),
        Carried::Info => ("an info message", "the process"),
    };
    let message = match ty {
        Type::Reference(reference) => {
            let elem = type_text(&reference.elem);
            let owned = match &*reference.elem {
                Type::Path(path) if path.qself.is_none() && path.path.is_ident("str") => {
                    "String".to_owned()
                }
                Type::Slice(slice) => format!("Vec<{}>", type_text(&slice.elem)),
                _ => elem.clone(),
            };
            let borrowed = format!(
                "&{}{elem}",
                if reference.mutability.is_some() {
                    "mut "
                } else {
                    ""
                }
            );
            format!(
                "{what} is moved to {owner} and must own its data: use `{owned}` rather than \
                 `{borrowed}`"
            )
        }
        Type::ImplTrait(_) => match carried {
            Carried::Argument => {
                "a message method's argument cannot be `impl Trait`: name the type".to_owned()
            }
            Carried::Reply => {
                "a #[call] method's reply cannot be `impl Trait`: name the type".to_owned()
            }
            Carried::Info => "an info message cannot be `impl Trait`: name the type".to_owned(),
        },
        _ => format!("the type of {what} cannot be left to inference (`_`): write it out"),
    };
    syn::Error::new_spanned(ty, message)
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
fn check_names(behavior: &Behavior, errors: &mut Option<syn::Error>) {
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
fn check_variants(behavior: &Behavior, errors: &mut Option<syn::Error>) {
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
