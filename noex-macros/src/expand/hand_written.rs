//! `#[remote]` on a hand-written `impl GenServer for T`: what `#[behavior]` adds for remote
//! use — the codec, `BehaviorName`, `RemoteBehavior` and the registry entry — for a server
//! whose message types are the user's own serde types.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{ImplItem, ImplItemType, ItemImpl, LitStr};

use crate::ast::type_text;

/// The associated types of `GenServer` that travel between nodes.
const MESSAGE_TYPES: [&str; 5] = ["Args", "Call", "Reply", "Cast", "Info"];

/// Expands `#[remote]` / `#[remote(name = "..", crate = path)]`.
pub(crate) fn remote(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let (name, krate) = remote_args(args)?;
    let _krate = crate::expand::KrateGuard::set(krate);
    let noex = crate::expand::krate();
    let mut item: ItemImpl = syn::parse2(input).map_err(|error| {
        syn::Error::new(
            error.span(),
            "#[remote] goes on a hand-written `impl GenServer for T` block",
        )
    })?;
    let is_gen_server = item
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .is_some_and(|segment| segment.ident == "GenServer");
    if !is_gen_server {
        return Err(syn::Error::new(
            item.impl_token.span(),
            "#[remote] goes on a hand-written `impl GenServer for T` block",
        ));
    }
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.generics.span(),
            "#[remote] takes no generic behaviour: spawning by name needs one concrete type",
        ));
    }
    if let Some(name) = name.as_ref().filter(|name| name.value().is_empty()) {
        // Keep the impl block, so that the error is not followed by others wherever `T` is
        // used as a `GenServer`.
        let error = syn::Error::new_spanned(name, "a behaviour name cannot be empty");
        let error = error.into_compile_error();
        return Ok(quote!(#item #error));
    }
    // `type Args = ..;` as written, as `#[behavior]` records its init arguments. (An impl
    // without one does not compile anyway.)
    let args_type = item
        .items
        .iter()
        .find_map(|item| match item {
            ImplItem::Type(ty) if ty.ident == "Args" => Some(type_text(&ty.ty)),
            _ => None,
        })
        .unwrap_or_default();
    // The codec if `RemoteBehavior` is implemented, as for `#[behavior]`: where a message type
    // is not a serde type, the checks below say so at that type, and this stays quiet.
    item.items.push(syn::parse_quote! {
        #[doc(hidden)]
        fn __remote_codec() -> ::core::option::Option<#noex::__private::Codec<Self>> {
            #[allow(unused_imports)]
            use #noex::__private::{ViaNothing as _, ViaRemote as _};
            (&#noex::__private::Probe::<Self>::new()).remote_codec()
        }
    });
    let self_ty = &item.self_ty;
    let message_types: Vec<&ImplItemType> = item
        .items
        .iter()
        .filter_map(|item| match item {
            ImplItem::Type(ty) if MESSAGE_TYPES.iter().any(|name| ty.ident == name) => Some(ty),
            _ => None,
        })
        .collect();
    // One check per message type, at the type as written in its `type Call = ..;` (named
    // through `GenServer`, as it may mention `Self`).
    let remote_checks = message_types.iter().map(|ty| {
        let ident = &ty.ident;
        // All at the type's first token (the type named through `GenServer` has tokens from
        // elsewhere: the impl's self type), as one place to point at.
        let span = ty.ty.span();
        let message = respan(quote!(<#self_ty as #noex::GenServer>::#ident), span);
        quote_spanned! {span=>
            (&#noex::__private::RemoteCheck::<#message>::new()).check::<#message>();
        }
    });
    // `RemoteBehavior` only where every message type is a serde type, so that a type that
    // is not is reported once, by its check, rather than again inside the codec.
    let guarded = message_types.iter().map(|ty| &ty.ty);
    let remote_guard = quote!(where #(for<'__noex> #guarded: #noex::__private::RemoteMessage,)*);
    let name = match name {
        Some(name) => quote!(#name),
        None => quote!(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(#self_ty)
        )),
    };
    Ok(quote! {
        #item

        const _: () = {
            #[automatically_derived]
            impl #noex::BehaviorName for #self_ty {
                const NAME: &'static str = #name;
            }

            const _: fn() = || {
                #[allow(unused_imports)]
                use #noex::__private::{CheckAll as _, CheckSerialize as _};
                #(#remote_checks)*
            };

            #[automatically_derived]
            impl #noex::RemoteBehavior for #self_ty #remote_guard {
                const TAGS: &'static [(&'static str, u32)] = &[];

                fn codec() -> #noex::__private::Codec<Self> {
                    #noex::__private::codec::<Self>()
                }
            }

            #noex::__private::inventory::submit! {
                #noex::__private::BehaviorEntry {
                    name: <#self_ty as #noex::BehaviorName>::NAME,
                    type_name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#self_ty)),
                    args_type: #args_type,
                    spawn: #noex::__private::spawn_encoded::<#self_ty>,
                }
            }
        };
    })
}

/// `name = ".."` and `crate = path`, each optional.
fn remote_args(args: TokenStream) -> syn::Result<(Option<LitStr>, Option<syn::Path>)> {
    let mut name = None;
    let mut krate = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("crate") {
            krate = Some(crate::attr::crate_path(&meta)?);
            Ok(())
        } else {
            Err(meta.error("unknown #[remote] option; expected `name = \"...\"` or `crate = path`"))
        }
    });
    syn::parse::Parser::parse2(parser, args)?;
    Ok((name, krate))
}

/// `tokens`, every one of them at `span`.
fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut inner =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                inner.set_span(span);
                token = proc_macro2::TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}
