//! `#[remote]` on a hand-written `impl GenServer for T`: what `#[behavior]` adds for remote
//! use — the codec, `BehaviorName`, `RemoteBehavior` and the registry entry — for a server
//! whose message types are the user's own serde types.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{ImplItem, ItemImpl, LitStr};

use crate::ast::type_text;

/// Expands `#[remote]` / `#[remote(name = "..")]`.
pub(crate) fn remote(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let name = remote_args(args)?;
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
    item.items.push(syn::parse_quote! {
        #[doc(hidden)]
        fn __remote_codec() -> ::core::option::Option<::noex::__private::Codec<Self>> {
            ::core::option::Option::Some(::noex::__private::codec::<Self>())
        }
    });
    let self_ty = &item.self_ty;
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
            impl ::noex::BehaviorName for #self_ty {
                const NAME: &'static str = #name;
            }

            #[automatically_derived]
            impl ::noex::RemoteBehavior for #self_ty {
                const TAGS: &'static [(&'static str, u32)] = &[];

                fn codec() -> ::noex::__private::Codec<Self> {
                    ::noex::__private::codec::<Self>()
                }
            }

            ::noex::__private::inventory::submit! {
                ::noex::__private::BehaviorEntry {
                    name: <#self_ty as ::noex::BehaviorName>::NAME,
                    type_name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#self_ty)),
                    args_type: #args_type,
                    spawn: ::noex::__private::spawn_encoded::<#self_ty>,
                }
            }
        };
    })
}

/// `name = ".."`, or nothing.
fn remote_args(args: TokenStream) -> syn::Result<Option<LitStr>> {
    let mut name = None;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error("unknown #[remote] option; expected `name = \"...\"`"))
        }
    });
    syn::parse::Parser::parse2(parser, args)?;
    Ok(name)
}
