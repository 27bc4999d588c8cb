//! Message types: what may travel in a message.

use syn::visit::Visit;
use syn::{FnArg, PatType, Type};

use crate::ast::{combine, type_text, Input, Method};
use crate::attr::Role;

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
pub(super) fn check_message_types(method: &Method, errors: &mut Option<syn::Error>) {
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
pub(super) fn typed_params(method: &Method) -> impl Iterator<Item = (&PatType, &Input)> {
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
