//! The plain model of a behaviour, parsed from its annotated `impl` block.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{
    Attribute, FnArg, GenericArgument, Ident, ImplItem, ItemImpl, Pat, PathArguments, ReturnType,
    Type,
};

use crate::attr::{self, Role};

/// A behaviour: the impl block (noex markers removed) and its marked methods.
pub(crate) struct Behavior {
    pub(crate) item: ItemImpl,
    /// The type's own name (`Worker` in `impl<T> Worker<T>`).
    pub(crate) ident: Ident,
    pub(crate) local: Option<Span>,
    pub(crate) methods: Vec<Method>,
}

/// A method marked `#[init]`, `#[call]`, `#[cast]`, `#[info]` or `#[terminate]`.
pub(crate) struct Method {
    pub(crate) role: Role,
    /// The marker attribute, for error spans.
    pub(crate) marker: Attribute,
    pub(crate) ident: Ident,
    pub(crate) is_async: bool,
    pub(crate) receiver: Receiver,
    /// The parameters, in order.
    pub(crate) inputs: Vec<Input>,
    /// The return type; `None` for `()`.
    pub(crate) output: Option<Type>,
    /// The whole signature, for error spans.
    pub(crate) sig: syn::Signature,
    pub(crate) tag: Option<syn::LitInt>,
    /// The whole `#[tag = N]` attribute, for error spans.
    pub(crate) tag_attr: Option<Attribute>,
    /// The method's doc comments, reused on the generated client method.
    pub(crate) docs: Vec<Attribute>,
    /// The method's `#[cfg(..)]`s, put on everything generated for it.
    pub(crate) cfgs: Vec<Attribute>,
    /// The method's `#[deprecated]`, put on its client methods.
    pub(crate) deprecated: Vec<Attribute>,
}

/// How a method takes `self`.
#[derive(Clone, Copy)]
pub(crate) enum Receiver {
    None,
    Ref,
    RefMut,
    /// `self` by value (not allowed; kept for the error).
    Value(Span),
}

/// One parameter of a marked method.
pub(crate) enum Input {
    /// A message argument: part of what the caller sends.
    Message { name: Ident, ty: Type },
    /// `&mut Ctx<Self>`.
    Ctx,
    /// `ReplyTo<T>`: the method answers itself, now or later.
    Reply { ty: Type, span: Span },
    /// `Info<T>` (for `#[info]`).
    Info { ty: Type },
    /// `&ExitReason` (for `#[terminate]`).
    Reason,
}

impl Method {
    pub(crate) fn messages(&self) -> impl Iterator<Item = (&Ident, &Type)> {
        self.inputs.iter().filter_map(|input| match input {
            Input::Message { name, ty } => Some((name, ty)),
            _ => None,
        })
    }

    /// The type a deferred reply carries, if the method takes a `ReplyTo`.
    pub(crate) fn deferred_reply(&self) -> Option<&Type> {
        self.inputs.iter().find_map(|input| match input {
            Input::Reply { ty, .. } => Some(ty),
            _ => None,
        })
    }

    /// What the caller of this `#[call]` method gets back; `None` for `()`.
    pub(crate) fn reply_type(&self) -> Option<&Type> {
        match self.deferred_reply() {
            Some(ty) if is_unit(ty) => None,
            Some(ty) => Some(ty),
            None => self.output.as_ref(),
        }
    }

    /// The type of `#[info]`'s messages.
    pub(crate) fn info_type(&self) -> Option<&Type> {
        self.inputs.iter().find_map(|input| match input {
            Input::Info { ty } => Some(ty),
            _ => None,
        })
    }
}

pub(crate) fn parse(mut item: ItemImpl, local: Option<Span>) -> syn::Result<Behavior> {
    let ident = match &*item.self_ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .map(|segment| segment.ident.clone())
            .ok_or_else(|| syn::Error::new_spanned(&item.self_ty, "expected a type name"))?,
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "#[behavior] goes on the impl block of a named struct",
            ))
        }
    };
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "#[behavior] goes on the struct's own impl block, not on a trait impl",
        ));
    }
    let mut methods = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for impl_item in &mut item.items {
        let ImplItem::Fn(function) = impl_item else {
            continue;
        };
        match attr::take_markers(&mut function.attrs) {
            Ok(markers) => {
                if let Some((role, marker)) = markers.role {
                    match method(role, marker, markers.tag, markers.tag_attr, function) {
                        Ok(method) => methods.push(method),
                        Err(error) => combine(&mut errors, error),
                    }
                } else if let Some(tag) = markers.tag_attr {
                    combine(
                        &mut errors,
                        syn::Error::new_spanned(
                            tag,
                            "#[tag] goes on a #[call] or #[cast] method; this method has no \
                             #[call] or #[cast]",
                        ),
                    );
                }
            }
            Err(error) => combine(&mut errors, error),
        }
    }
    // The types are copied out of the impl block, into items where `Self` means something
    // else (the client trait) or nothing (the enums): there it becomes the self type.
    let mut replace = ReplaceSelf(&item.self_ty);
    for method in &mut methods {
        for input in &mut method.inputs {
            match input {
                Input::Message { ty, .. } | Input::Reply { ty, .. } | Input::Info { ty } => {
                    replace.visit_type_mut(ty);
                }
                Input::Ctx | Input::Reason => {}
            }
        }
        if let Some(output) = &mut method.output {
            replace.visit_type_mut(output);
        }
    }
    match errors {
        Some(error) => Err(error),
        None => Ok(Behavior {
            item,
            ident,
            local,
            methods,
        }),
    }
}

/// Replaces `Self` with the self type (spanned as the `Self` it replaces).
struct ReplaceSelf<'a>(&'a Type);

impl VisitMut for ReplaceSelf<'_> {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(path) = ty {
            if path.qself.is_none() && path.path.is_ident("Self") {
                let span = path.path.segments[0].ident.span();
                let tokens = respan(self.0.to_token_stream(), span);
                *ty = syn::parse2(tokens).unwrap_or_else(|_| self.0.clone());
                return;
            }
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut respanned =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                token = TokenTree::Group(respanned);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

pub(crate) fn combine(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(all) => all.combine(error),
        None => *errors = Some(error),
    }
}

fn method(
    role: Role,
    marker: Attribute,
    tag: Option<syn::LitInt>,
    tag_attr: Option<Attribute>,
    function: &syn::ImplItemFn,
) -> syn::Result<Method> {
    let sig = &function.sig;
    let mut receiver = Receiver::None;
    let mut inputs = Vec::new();
    for (position, input) in sig.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(r) => {
                // `r.ty` is the receiver's type, for `&self` as for `self: &Self`.
                receiver = match &*r.ty {
                    Type::Reference(reference) if is_self(&reference.elem) => {
                        match reference.mutability {
                            Some(_) => Receiver::RefMut,
                            None => Receiver::Ref,
                        }
                    }
                    _ => Receiver::Value(r.span()),
                };
            }
            FnArg::Typed(typed) => inputs.push(classify(role, position, typed)?),
        }
    }
    let output = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) if is_unit(ty) => None,
        ReturnType::Type(_, ty) => Some((**ty).clone()),
    };
    let docs = function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("doc"))
        .cloned()
        .collect();
    let cfgs = function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg"))
        .cloned()
        .collect();
    let deprecated = function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("deprecated"))
        .cloned()
        .collect();
    Ok(Method {
        role,
        marker,
        ident: sig.ident.clone(),
        is_async: sig.asyncness.is_some(),
        receiver,
        inputs,
        output,
        sig: sig.clone(),
        tag,
        tag_attr,
        docs,
        cfgs,
        deprecated,
    })
}

/// Sorts a parameter into message argument, context, reply handle, info or reason.
fn classify(role: Role, position: usize, typed: &syn::PatType) -> syn::Result<Input> {
    let ty = &*typed.ty;
    if let Type::Reference(reference) = ty {
        if last_segment_is(&reference.elem, "Ctx") {
            if reference.mutability.is_none() {
                return Err(syn::Error::new_spanned(
                    ty,
                    "the context is taken as `&mut Ctx<Self>`",
                ));
            }
            return Ok(Input::Ctx);
        }
        if role == Role::Terminate && last_segment_is(&reference.elem, "ExitReason") {
            return Ok(Input::Reason);
        }
        if let (Some(_), Some(name)) = (reference.mutability, context_alias(&reference.elem)) {
            return Err(syn::Error::new_spanned(
                ty,
                format!(
                    "`{}` is not recognised as the context, so it would be a message \
                     argument, which cannot borrow: write the context `ctx: &mut Ctx<Self>` \
                     (noex recognises it by the name `Ctx`: import `noex::Ctx` without \
                     renaming it, not as `{name}`)",
                    type_text(ty)
                ),
            ));
        }
    }
    if role == Role::Call {
        if let Some(inner) = generic_argument(ty, "ReplyTo") {
            return Ok(Input::Reply {
                ty: inner,
                span: ty.span(),
            });
        }
    }
    if role == Role::Info {
        if let Some(inner) = generic_argument(ty, "Info") {
            return Ok(Input::Info { ty: inner });
        }
    }
    let name = match &*typed.pat {
        Pat::Ident(pat) => pat.ident.clone(),
        _ => Ident::new(&format!("arg{position}"), typed.pat.span()),
    };
    Ok(Input::Message {
        name,
        ty: ty.clone(),
    })
}

/// A type as the user would write it (`Vec<u8>`, not `Vec < u8 >`), for messages and for
/// the registry.
pub(crate) fn type_text(ty: &Type) -> String {
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

pub(crate) fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(tuple) if tuple.elems.is_empty())
}

fn is_self(ty: &Type) -> bool {
    matches!(ty, Type::Path(path) if path.qself.is_none() && path.path.is_ident("Self"))
}

/// The name of a type that looks like the context under another name (`Context<Self>`).
fn context_alias(ty: &Type) -> Option<String> {
    let Type::Path(path) = ty else { return None };
    let name = path.path.segments.last()?.ident.to_string();
    (name.ends_with("Ctx") || name.ends_with("Context")).then_some(name)
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == name),
        _ => false,
    }
}

/// `T` in `Name<T>`, if `ty` is `Name<T>` (under any path).
pub(crate) fn generic_argument(ty: &Type, name: &str) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let segment = path.path.segments.last()?;
    if segment.ident != name {
        return None;
    }
    let PathArguments::AngleBracketed(arguments) = &segment.arguments else {
        return None;
    };
    match arguments.args.first()? {
        GenericArgument::Type(inner) if arguments.args.len() == 1 => Some(inner.clone()),
        _ => None,
    }
}
