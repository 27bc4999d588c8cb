//! What a remote-capable behaviour adds: wire tags, tagged serde impls of its messages,
//! `RemoteBehavior`, and its entry in the behaviour registry.
//!
//! A message is encoded as a tuple: its tag (a `u32` derived from the behaviour's name and
//! the method's name, or given with `#[tag = ..]`), then its payload. Decoding matches on
//! the tag, so a message of a renamed or removed method is an error, never another method.
//! The same bytes are also written and read directly (`Tagged`: the tag and `Vec<u8>`
//! arguments by hand, other arguments with postcard), which is what the codec uses; the
//! serde impls remain the definition of the format.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;

use super::server::message_types;
use super::{variant, with_role, Names};
use crate::ast::{type_text, Behavior, Method};
use crate::attr::Role;

pub(super) fn remote(behavior: &Behavior, names: &Names) -> TokenStream {
    let noex = crate::expand::krate();
    let self_ty = &behavior.item.self_ty;
    let ident = &behavior.ident;
    let messages: Vec<&Method> = behavior
        .methods
        .iter()
        .filter(|m| matches!(m.role, Role::Call | Role::Cast))
        .collect();
    let tag_consts = messages.iter().map(|method| {
        let name = tag_const(method);
        let cfgs = &method.cfgs;
        let method_name = method.ident.unraw().to_string();
        let value = match &method.tag {
            Some(tag) => quote!(#tag),
            None => {
                quote!(#noex::__private::tag(<#self_ty as #noex::BehaviorName>::NAME, #method_name))
            }
        };
        quote!(#(#cfgs)* const #name: u32 = #value;)
    });
    let all_tags = messages.iter().map(|method| {
        let name = tag_const(method);
        let cfgs = &method.cfgs;
        quote!(#(#cfgs)* #name)
    });
    let tag_table = messages.iter().map(|method| {
        let method_name = method.ident.unraw().to_string();
        let name = tag_const(method);
        let cfgs = &method.cfgs;
        quote!(#(#cfgs)* (#method_name, #name))
    });
    let collision =
        format!("two messages of behaviour {ident} have the same wire tag; give one a #[tag = ..]");
    let init = super::init(behavior);
    let remote_checks = message_types(behavior)
        .chain(args_types(behavior).map(|ty| (init, ty)))
        .flat_map(|(method, ty)| {
            let mut leaves = Vec::new();
            serde_leaves(ty, &mut leaves);
            leaves.into_iter().map(move |leaf| (method, leaf))
        })
        .map(|(method, leaf)| {
            let cfgs = &method.cfgs;
            // The turbofish of `check` carries the leaf's own spans, so that the error
            // points at all of it, and the call spans the same tokens (from its first to its
            // last), so that it is not pointed at again.
            let (first, last) = first_last_spans(&leaf);
            let check = Ident::new("check", last);
            let start = quote_spanned!(first=> (&#noex::__private::RemoteCheck::<#leaf>::new()));
            let end = quote_spanned!(last=> ());
            quote!(#(#cfgs)* #start.#check::<#leaf>#end;)
        });
    let call_serde = message_serde(behavior, &names.call, Role::Call, Payload::Arguments);
    let reply_serde = message_serde(behavior, &names.reply, Role::Call, Payload::Reply);
    let cast_serde = message_serde(behavior, &names.cast, Role::Cast, Payload::Arguments);
    let args_text = args_text(behavior);
    // The types of a `#[cfg]`-ed method are left out: a where clause cannot carry `#[cfg]`
    // (before Rust 1.91), and such a type may not exist.
    let all_types: Vec<&syn::Type> = message_types(behavior)
        .filter(|(method, _)| method.cfgs.is_empty())
        .map(|(_, ty)| ty)
        .chain(args_types(behavior))
        .collect();
    // Also only where the struct is a behaviour: where it has no `#[behavior]`, the uses of
    // its name below say so, and the codec does not say it again.
    let remote_guard = quote! {
        where
            for<'__noex> #self_ty: #noex::BehaviorName,
            #(for<'__noex> #all_types: #noex::__private::RemoteMessage,)*
    };
    quote! {
        #(#tag_consts)*

        const _: () = ::core::assert!(#noex::__private::distinct(&[#(#all_tags),*]), #collision);

        const _: fn() = || {
            #[allow(unused_imports)]
            use #noex::__private::{CheckAll as _, CheckSerialize as _};
            #(#remote_checks)*
        };

        #call_serde
        #reply_serde
        #cast_serde

        #[automatically_derived]
        impl #noex::RemoteBehavior for #self_ty #remote_guard {
            const TAGS: &'static [(&'static str, u32)] = &[#(#tag_table),*];

            fn codec() -> #noex::__private::Codec<Self> {
                #noex::__private::tagged_codec::<Self>()
            }
        }

        #noex::__private::inventory::submit! {
            #noex::__private::BehaviorEntry {
                name: <#self_ty as #noex::BehaviorName>::NAME,
                type_name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                args_type: #args_text,
                spawn: #noex::__private::spawn_encoded::<#self_ty>,
            }
        }
    }
}

/// The registry entry of a local-only behaviour: known by name, so that a request to spawn
/// it by name is answered "local-only" rather than "not registered".
pub(super) fn local_entry(behavior: &Behavior) -> TokenStream {
    let noex = crate::expand::krate();
    let self_ty = &behavior.item.self_ty;
    let ident = &behavior.ident;
    quote! {
        #noex::__private::inventory::submit! {
            #noex::__private::LocalBehaviorEntry {
                name: <#self_ty as #noex::BehaviorName>::NAME,
                type_name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
            }
        }
    }
}

fn tag_const(method: &Method) -> Ident {
    format_ident!("TAG_{}", method.ident.unraw().to_string().to_uppercase())
}

/// The init arguments' type as written (a tuple of two or more), for the registry.
fn args_text(behavior: &Behavior) -> String {
    let types: Vec<String> = args_types(behavior).map(type_text).collect();
    match types.as_slice() {
        [] => "()".to_owned(),
        [one] => one.clone(),
        many => format!("({})", many.join(", ")),
    }
}

/// The types of the `#[init]` method's arguments.
fn args_types(behavior: &Behavior) -> impl Iterator<Item = &syn::Type> {
    super::init(behavior).messages().map(|(_, ty)| ty)
}

/// The types a message type is a serde type if all of are, found syntactically through the
/// common wrappers whose serde impls require just that of their parameters: `Result<T, E>`,
/// `io::Result<T>` (`T` and `std::io::Error`), `Option<T>`, `Vec<T>` and tuples. Each is
/// checked on its own, so that a type that is not a serde type is reported with noex's
/// message at that type, which a bound not met inside a wrapper's impl does not get.
fn serde_leaves(ty: &syn::Type, out: &mut Vec<syn::Type>) {
    match ty {
        syn::Type::Paren(inner) => serde_leaves(&inner.elem, out),
        syn::Type::Group(inner) => serde_leaves(&inner.elem, out),
        syn::Type::Tuple(tuple) if !tuple.elems.is_empty() => {
            for elem in &tuple.elems {
                serde_leaves(elem, out);
            }
        }
        syn::Type::Path(path) if path.qself.is_none() => {
            let names: Vec<String> = path
                .path
                .segments
                .iter()
                .map(|segment| segment.ident.to_string())
                .collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let args: Option<Vec<&syn::Type>> =
                match &path.path.segments.last().map(|s| &s.arguments) {
                    Some(syn::PathArguments::AngleBracketed(args)) => args
                        .args
                        .iter()
                        .map(|arg| match arg {
                            syn::GenericArgument::Type(ty) => Some(ty),
                            _ => None,
                        })
                        .collect(),
                    _ => None,
                };
            let prefix_free = path
                .path
                .segments
                .iter()
                .rev()
                .skip(1)
                .all(|segment| segment.arguments.is_none());
            let std_path = |last: &str, module: &str| {
                let roots = ["std", "core", "alloc"];
                match names.as_slice() {
                    [only] => *only == last && path.path.leading_colon.is_none(),
                    [root, m, l] => roots.contains(root) && *m == module && *l == last,
                    _ => false,
                }
            };
            let io_result = match names.as_slice() {
                ["io", "Result"] => path.path.leading_colon.is_none(),
                ["std", "io", "Result"] => true,
                _ => false,
            };
            match args.as_deref() {
                Some([ok, err]) if prefix_free && std_path("Result", "result") => {
                    serde_leaves(ok, out);
                    serde_leaves(err, out);
                }
                Some([ok]) if prefix_free && io_result => {
                    serde_leaves(ok, out);
                    out.push(io_error(ty));
                }
                Some([inner])
                    if prefix_free && (std_path("Option", "option") || std_path("Vec", "vec")) =>
                {
                    serde_leaves(inner, out);
                }
                _ => out.push(ty.clone()),
            }
        }
        _ => out.push(ty.clone()),
    }
}

/// The spans of the first and last tokens of `ty`.
fn first_last_spans(ty: &syn::Type) -> (proc_macro2::Span, proc_macro2::Span) {
    let tokens: Vec<proc_macro2::TokenTree> = ty.to_token_stream().into_iter().collect();
    let first = match tokens.first() {
        Some(proc_macro2::TokenTree::Group(group)) => group.span_open(),
        Some(token) => token.span(),
        None => proc_macro2::Span::call_site(),
    };
    let last = match tokens.last() {
        Some(proc_macro2::TokenTree::Group(group)) => group.span_close(),
        Some(token) => token.span(),
        None => first,
    };
    (first, last)
}

/// `::std::io::Error`, spanning all of `ty` (an `io::Result<T>`).
fn io_error(ty: &syn::Type) -> syn::Type {
    let (first, last) = first_last_spans(ty);
    let error = syn::Ident::new("Error", last);
    syn::parse_quote_spanned!(first=> ::std::io::#error)
}

/// What a variant of a message enum carries.
#[derive(Clone, Copy)]
enum Payload {
    /// The method's arguments (calls and casts).
    Arguments,
    /// The method's reply.
    Reply,
}

/// `true` if `ty` is written `Vec<u8>`: such an argument or reply is encoded as one block
/// of bytes (the same bytes on the wire as a sequence of `u8`s, written and read at the
/// speed of a copy rather than byte by byte).
fn is_byte_vec(ty: &syn::Type) -> bool {
    let syn::Type::Path(path) = ty else {
        return false;
    };
    let Some(last) = path.path.segments.last() else {
        return false;
    };
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return false;
    };
    let mut args = args.args.iter();
    let (Some(syn::GenericArgument::Type(syn::Type::Path(item))), None) =
        (args.next(), args.next())
    else {
        return false;
    };
    path.qself.is_none() && last.ident == "Vec" && item.qself.is_none() && item.path.is_ident("u8")
}

/// The value to serialize for `name` (a reference to a `ty`).
fn encoded(name: &Ident, ty: &syn::Type) -> TokenStream {
    let noex = crate::expand::krate();
    if is_byte_vec(ty) {
        quote!(#noex::__private::AsBytes(#name))
    } else {
        quote!(#name)
    }
}

/// The type to deserialize for a `ty`.
fn wire_type(ty: &syn::Type) -> TokenStream {
    let noex = crate::expand::krate();
    if is_byte_vec(ty) {
        quote!(#noex::__private::ByteBuf)
    } else {
        quote!(#ty)
    }
}

/// The `ty` from its deserialized `name`.
fn decoded(name: &Ident, ty: &syn::Type) -> TokenStream {
    if is_byte_vec(ty) {
        quote!(#name.0)
    } else {
        quote!(#name)
    }
}

/// Appends argument `name` (a reference to a `ty`) in the direct encoding (see
/// `noex::dist::tagged`).
fn put(name: &Ident, ty: &syn::Type) -> TokenStream {
    let noex = crate::expand::krate();
    if is_byte_vec(ty) {
        quote!(#noex::__private::put_bytes(__noex_out, #name, __noex_end)?;)
    } else {
        quote!(#noex::__private::put_value(__noex_out, #name, __noex_end)?;)
    }
}

/// Decodes argument `name`, a `ty`, in the direct encoding.
fn take(name: &Ident, ty: &syn::Type) -> TokenStream {
    if is_byte_vec(ty) {
        quote!(let #name: #ty = __noex_input.bytes()?;)
    } else {
        quote!(let #name: #ty = __noex_input.value()?;)
    }
}

/// `Serialize`, `Deserialize`, `FromTagged` and `Tagged` (the direct encoding) for one
/// message enum.
fn message_serde(
    behavior: &Behavior,
    enum_ident: &Ident,
    role: Role,
    payload: Payload,
) -> TokenStream {
    let noex = crate::expand::krate();
    let self_ty = &behavior.item.self_ty;
    let field_types: Vec<&syn::Type> = with_role(behavior, role)
        .filter(|method| method.cfgs.is_empty())
        .flat_map(|method| -> Vec<&syn::Type> {
            match payload {
                Payload::Arguments => method.messages().map(|(_, ty)| ty).collect(),
                Payload::Reply => method.reply_type().into_iter().collect(),
            }
        })
        .collect();
    let guard = quote!(where #(for<'__noex> #field_types: #noex::__private::RemoteMessage,)*);
    let mut serialize_arms = Vec::new();
    let mut decode_arms = Vec::new();
    let mut encode_direct_arms = Vec::new();
    let mut decode_direct_arms = Vec::new();
    for method in with_role(behavior, role) {
        let variant = variant(method);
        let tag = tag_const(method);
        let cfgs = &method.cfgs;
        match payload {
            Payload::Arguments => {
                let names = super::bindings(method);
                let types: Vec<_> = method.messages().map(|(_, ty)| ty).collect();
                let encoded = names.iter().zip(&types).map(|(name, ty)| encoded(name, ty));
                let wire_types = types.iter().map(|ty| wire_type(ty));
                let decoded = names.iter().zip(&types).map(|(name, ty)| decoded(name, ty));
                serialize_arms.push(quote! {
                    #(#cfgs)*
                    Self::#variant(#(ref #names),*) =>
                        #noex::__private::serialize_tagged(__noex_serializer, #tag, &(#(#encoded,)*))
                });
                decode_arms.push(quote! {
                    #(#cfgs)*
                    #tag => {
                        let (#(#names,)*): (#(#wire_types,)*) = #noex::__private::payload(__noex_seq)?;
                        ::core::result::Result::Ok(Self::#variant(#(#decoded),*))
                    }
                });
                let puts = names.iter().zip(&types).map(|(name, ty)| put(name, ty));
                encode_direct_arms.push(quote! {
                    #(#cfgs)*
                    Self::#variant(#(ref #names),*) => {
                        #noex::__private::put_tag(__noex_out, &const { #noex::__private::TagBytes::new(#tag) }, __noex_end)?;
                        #(#puts)*
                        ::core::result::Result::Ok(())
                    }
                });
                let takes = names.iter().zip(&types).map(|(name, ty)| take(name, ty));
                decode_direct_arms.push(quote! {
                    #(#cfgs)*
                    #tag => {
                        #(#takes)*
                        ::core::result::Result::Ok(Self::#variant(#(#names),*))
                    }
                });
            }
            Payload::Reply => match method.reply_type() {
                Some(ty) => {
                    let value = format_ident!("__noex_value");
                    let encoded = encoded(&value, ty);
                    let wire_type = wire_type(ty);
                    let decoded = decoded(&value, ty);
                    serialize_arms.push(quote! {
                        #(#cfgs)*
                        Self::#variant(ref #value) =>
                            #noex::__private::serialize_tagged(__noex_serializer, #tag, &#encoded)
                    });
                    decode_arms.push(quote! {
                        #(#cfgs)*
                        #tag => {
                            let #value = #noex::__private::payload::<_, #wire_type>(__noex_seq)?;
                            ::core::result::Result::Ok(Self::#variant(#decoded))
                        }
                    });
                    let put = put(&value, ty);
                    encode_direct_arms.push(quote! {
                        #(#cfgs)*
                        Self::#variant(ref #value) => {
                            #noex::__private::put_tag(__noex_out, &const { #noex::__private::TagBytes::new(#tag) }, __noex_end)?;
                            #put
                            ::core::result::Result::Ok(())
                        }
                    });
                    let take = take(&value, ty);
                    decode_direct_arms.push(quote! {
                        #(#cfgs)*
                        #tag => {
                            #take
                            ::core::result::Result::Ok(Self::#variant(#value))
                        }
                    });
                }
                None => {
                    serialize_arms.push(quote! {
                        #(#cfgs)*
                        Self::#variant => #noex::__private::serialize_tagged(__noex_serializer, #tag, &())
                    });
                    decode_arms.push(quote! {
                        #(#cfgs)*
                        #tag => {
                            #noex::__private::payload::<_, ()>(__noex_seq)?;
                            ::core::result::Result::Ok(Self::#variant)
                        }
                    });
                    encode_direct_arms.push(quote! {
                        #(#cfgs)*
                        Self::#variant => #noex::__private::put_tag(__noex_out, &const { #noex::__private::TagBytes::new(#tag) }, __noex_end)
                    });
                    decode_direct_arms.push(quote! {
                        #(#cfgs)*
                        #tag => ::core::result::Result::Ok(Self::#variant)
                    });
                }
            },
        }
    }
    // `match *self` with `ref` bindings: it also holds no arm when every message of the enum
    // is `#[cfg]`-ed out, which `match self` cannot.
    let serialize_body = quote!(match *self { #(#serialize_arms,)* });
    let encode_direct_body = if encode_direct_arms.is_empty() {
        quote!(match *self {})
    } else {
        quote! {
            let __noex_end = #noex::__private::wire_end(__noex_out, __noex_most);
            match *self { #(#encode_direct_arms,)* }
        }
    };
    quote! {
        #[automatically_derived]
        impl #noex::__private::serde::Serialize for #enum_ident #guard {
            fn serialize<S: #noex::__private::serde::Serializer>(
                &self,
                __noex_serializer: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                #serialize_body
            }
        }

        #[automatically_derived]
        impl<'de> #noex::__private::serde::Deserialize<'de> for #enum_ident #guard {
            fn deserialize<D: #noex::__private::serde::Deserializer<'de>>(
                __noex_deserializer: D,
            ) -> ::core::result::Result<Self, D::Error> {
                #noex::__private::deserialize_tagged(__noex_deserializer)
            }
        }

        #[automatically_derived]
        impl #noex::__private::FromTagged for #enum_ident #guard {
            const BEHAVIOR: &'static str = <#self_ty as #noex::BehaviorName>::NAME;

            fn from_tagged<'de, A: #noex::__private::serde::de::SeqAccess<'de>>(
                __noex_tag: u32,
                __noex_seq: A,
            ) -> ::core::result::Result<Self, A::Error> {
                #[allow(unreachable_code, unused_variables)]
                match __noex_tag {
                    #(#decode_arms,)*
                    other => ::core::result::Result::Err(
                        #noex::__private::unknown_tag(Self::BEHAVIOR, other),
                    ),
                }
            }
        }

        #[automatically_derived]
        impl #noex::__private::Tagged for #enum_ident #guard {
            #[inline]
            fn encode_tagged(
                &self,
                __noex_out: &mut ::std::vec::Vec<u8>,
                __noex_most: usize,
            ) -> ::core::result::Result<(), #noex::__private::WireError> {
                #encode_direct_body
            }

            #[inline]
            fn decode_tagged(
                __noex_bytes: &[u8],
            ) -> ::core::result::Result<Self, #noex::__private::WireError> {
                let mut __noex_input = #noex::__private::WireInput::new(__noex_bytes);
                #[allow(unreachable_code, unused_variables)]
                match __noex_input.tag()? {
                    #(#decode_direct_arms,)*
                    _ => ::core::result::Result::Err(#noex::__private::unknown_wire_tag()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::ToTokens;

    fn leaves(ty: &str) -> Vec<String> {
        let ty: syn::Type = syn::parse_str(ty).expect("a type");
        let mut out = Vec::new();
        super::serde_leaves(&ty, &mut out);
        out.iter()
            .map(|leaf| leaf.to_token_stream().to_string().replace(' ', ""))
            .collect()
    }

    #[test]
    fn wrappers_are_looked_through() {
        assert_eq!(
            leaves("std::io::Result<Vec<u8>>"),
            ["u8", "::std::io::Error"]
        );
        assert_eq!(leaves("io::Result<()>"), ["()", "::std::io::Error"]);
        assert_eq!(leaves("Result<u32, Plain>"), ["u32", "Plain"]);
        assert_eq!(leaves("core::result::Result<A, B>"), ["A", "B"]);
        assert_eq!(leaves("Option<Vec<(u8, X)>>"), ["u8", "X"]);
        assert_eq!(leaves("(A, (B, C))"), ["A", "B", "C"]);
    }

    #[test]
    fn other_types_are_checked_whole() {
        for ty in [
            "anyhow::Result<u8>",
            "Result<u8>",
            "my::Option<X>",
            "::io::Result<u8>",
            "[X; 4]",
            "Box<X>",
            "()",
            "Vec<X, A>",
            "HashMap<K, V>",
        ] {
            assert_eq!(leaves(ty), [ty.replace(' ', "")], "{ty}");
        }
    }
}
