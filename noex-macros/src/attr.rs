//! Parsing of the attributes: `#[behavior(..)]` and the method markers.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::{Attribute, Expr, ExprLit, Lit, LitInt, LitStr, Meta};

/// The arguments of `#[behavior(..)]`.
#[derive(Default)]
pub(crate) struct BehaviorArgs {
    /// `name = ".."`: the behaviour's registry and wire name (on the struct).
    pub(crate) name: Option<LitStr>,
    /// `local`: no serialization, no registry entry (on the impl block).
    pub(crate) local: Option<Span>,
    /// `crate = path` (or `crate = "path"`): the path of the noex crate in the generated code,
    /// for a crate that renames the dependency or reaches noex through another crate.
    pub(crate) krate: Option<syn::Path>,
}

pub(crate) fn behavior_args(args: TokenStream) -> syn::Result<BehaviorArgs> {
    let mut parsed = BehaviorArgs::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            parsed.name = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("crate") {
            parsed.krate = Some(crate_path(&meta)?);
            Ok(())
        } else if meta.path.is_ident("local") {
            if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                // Skip what follows `local` (`= true`, `(..)`) so that the error covers it.
                while !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                    meta.input.parse::<proc_macro2::TokenTree>()?;
                }
                return Err(meta.error("`local` takes no value: write #[behavior(local)]"));
            }
            parsed.local = Some(meta.path.require_ident()?.span());
            Ok(())
        } else {
            Err(meta.error(
                "unknown #[behavior] option; expected `name = \"...\"`, `local` or `crate = path`",
            ))
        }
    });
    parser.parse2(args)?;
    Ok(parsed)
}

/// The value of `crate = ..`: a path (`crate = actors`, `crate = crate::facade`) or a string
/// holding one (`crate = "actors"`, as serde's `#[serde(crate = "..")]`).
pub(crate) fn crate_path(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<syn::Path> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        lit.parse::<syn::Path>().map_err(|_| {
            syn::Error::new_spanned(
                &lit,
                "expected the path of the noex crate: crate = \"actors\"",
            )
        })
    } else {
        value.call(syn::Path::parse_mod_style).map_err(|error| {
            syn::Error::new(
                error.span(),
                "expected the path of the noex crate: crate = actors",
            )
        })
    }
}

/// What a method of the impl block is marked as.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Role {
    Init,
    Call,
    Cast,
    Info,
    Terminate,
}

impl Role {
    pub(crate) fn attr_name(self) -> &'static str {
        match self {
            Role::Init => "init",
            Role::Call => "call",
            Role::Cast => "cast",
            Role::Info => "info",
            Role::Terminate => "terminate",
        }
    }

    fn from_attr(attr: &Attribute) -> Option<Role> {
        let ident = marker_name(attr.path())?;
        [
            Role::Init,
            Role::Call,
            Role::Cast,
            Role::Info,
            Role::Terminate,
        ]
        .into_iter()
        .find(|role| ident == role.attr_name())
    }
}

/// The name of a marker written `#[name]` or `#[noex::name]` (as `#[noex::behavior]` can
/// be).
fn marker_name(path: &syn::Path) -> Option<&syn::Ident> {
    let mut segments = path.segments.iter();
    let (first, second) = (segments.next()?, segments.next());
    if segments.next().is_some() || !first.arguments.is_none() {
        return None;
    }
    match second {
        None if path.leading_colon.is_none() => Some(&first.ident),
        Some(second) if first.ident == "noex" && second.arguments.is_none() => Some(&second.ident),
        _ => None,
    }
}

/// The noex markers found on one method, removed from its attributes.
pub(crate) struct Markers {
    /// The role and the attribute that gave it (for spans).
    pub(crate) role: Option<(Role, Attribute)>,
    /// `#[tag = N]`.
    pub(crate) tag: Option<LitInt>,
    /// The whole `#[tag = N]` attribute, for error spans.
    pub(crate) tag_attr: Option<Attribute>,
}

/// Takes the noex markers out of `attrs`, leaving the others.
pub(crate) fn take_markers(attrs: &mut Vec<Attribute>) -> syn::Result<Markers> {
    let mut markers = Markers {
        role: None,
        tag: None,
        tag_attr: None,
    };
    let mut errors: Option<syn::Error> = None;
    let mut push_error = |error: syn::Error| match &mut errors {
        Some(all) => all.combine(error),
        None => errors = Some(error),
    };
    let mut kept = Vec::with_capacity(attrs.len());
    for attr in attrs.drain(..) {
        if let Some(role) = Role::from_attr(&attr) {
            if !matches!(attr.meta, Meta::Path(_)) {
                push_error(syn::Error::new_spanned(
                    &attr,
                    format!("#[{}] takes no arguments", role.attr_name()),
                ));
            } else if let Some((first, _)) = &markers.role {
                push_error(syn::Error::new_spanned(
                    &attr,
                    format!(
                        "a method has one role; it is already #[{}]",
                        first.attr_name()
                    ),
                ));
            } else {
                markers.role = Some((role, attr));
            }
        } else if marker_name(attr.path()).is_some_and(|name| name == "tag") {
            match &attr.meta {
                Meta::NameValue(nv) => match &nv.value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Int(value),
                        ..
                    }) => match value.base10_parse::<u32>() {
                        Ok(_) if markers.tag.is_some() => push_error(syn::Error::new_spanned(
                            &attr,
                            "a method has one wire tag; it already has a #[tag]",
                        )),
                        Ok(_) => {
                            markers.tag = Some(value.clone());
                            markers.tag_attr = Some(attr.clone());
                        }
                        Err(_) => push_error(syn::Error::new_spanned(
                            value,
                            "a wire tag is a u32 integer",
                        )),
                    },
                    other => push_error(syn::Error::new_spanned(
                        other,
                        "expected an integer: #[tag = 0x1234]",
                    )),
                },
                _ => push_error(syn::Error::new_spanned(
                    &attr,
                    "expected #[tag = <integer>]",
                )),
            }
        } else {
            kept.push(attr);
        }
    }
    *attrs = kept;
    match errors {
        Some(error) => Err(error),
        None => Ok(markers),
    }
}
