//! The message enums and the `GenServer` impl that dispatches them.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{GenericParam, Type};

use super::{init, variant, with_role, Names};
use crate::ast::{is_unit, Behavior, Input, Method};
use crate::attr::Role;

/// The hidden `Call`, `Reply` and `Cast` enums.
pub(super) fn enums(behavior: &Behavior, names: &Names) -> TokenStream {
    let calls = with_role(behavior, Role::Call).map(|m| {
        let variant = variant(m);
        let cfgs = &m.cfgs;
        let fields = m.messages().map(|(_, ty)| ty);
        quote!(#(#cfgs)* #variant(#(#fields),*))
    });
    let replies = with_role(behavior, Role::Call).map(|m| {
        let variant = variant(m);
        let cfgs = &m.cfgs;
        match m.reply_type() {
            Some(ty) => quote!(#(#cfgs)* #variant(#ty)),
            None => quote!(#(#cfgs)* #variant),
        }
    });
    let casts = with_role(behavior, Role::Cast).map(|m| {
        let variant = variant(m);
        let cfgs = &m.cfgs;
        let fields = m.messages().map(|(_, ty)| ty);
        quote!(#(#cfgs)* #variant(#(#fields),*))
    });
    let generics = &behavior.item.generics;
    let where_clause = &generics.where_clause;
    let phantom = phantom_variant(behavior);
    let declare = |ident: &syn::Ident, what: &str, variants: Vec<TokenStream>| {
        let doc = format!("The {what} of behaviour `{}` (generated).", behavior.ident);
        quote! {
            #[doc = #doc]
            #[doc(hidden)]
            #[allow(
                non_camel_case_types,
                private_interfaces,
                clippy::enum_variant_names,
                clippy::large_enum_variant
            )]
            pub enum #ident #generics #where_clause {
                #(#variants,)*
                #phantom
            }
        }
    };
    let call = declare(&names.call, "calls", calls.collect());
    let reply = declare(&names.reply, "replies", replies.collect());
    let cast = declare(&names.cast, "casts", casts.collect());
    quote!(#call #reply #cast)
}

/// A generic behaviour's enums carry its type parameters in an uninhabited variant.
fn phantom_variant(behavior: &Behavior) -> TokenStream {
    let params: Vec<_> = behavior
        .item
        .generics
        .params
        .iter()
        .filter_map(|param| match param {
            GenericParam::Type(param) => Some(&param.ident),
            _ => None,
        })
        .collect();
    if params.is_empty() {
        return TokenStream::new();
    }
    quote! {
        #[doc(hidden)]
        __Phantom(::core::marker::PhantomData<fn() -> (#(#params,)*)>, ::core::convert::Infallible),
    }
}

/// The match arm that disposes of the phantom variant, if there is one.
fn phantom_arm(behavior: &Behavior, enum_ident: &syn::Ident) -> TokenStream {
    if behavior.item.generics.type_params().next().is_none() {
        return TokenStream::new();
    }
    quote!(#enum_ident::__Phantom(_, never) => match never {},)
}

/// `Type<params>` for a generated enum.
pub(super) fn enum_type(behavior: &Behavior, ident: &syn::Ident) -> TokenStream {
    let (_, ty_generics, _) = behavior.item.generics.split_for_impl();
    quote!(#ident #ty_generics)
}

/// `Args` of the behaviour: the `#[init]` method's message arguments, as one type.
fn args_type(behavior: &Behavior) -> TokenStream {
    let types: Vec<&Type> = init(behavior).messages().map(|(_, ty)| ty).collect();
    match types.as_slice() {
        [] => quote!(()),
        [one] => quote!(#one),
        many => quote!((#(#many,)*)),
    }
}

/// The arguments a method is called with, in its own parameter order.
fn call_arguments(method: &Method, reply: TokenStream) -> Vec<TokenStream> {
    method
        .inputs
        .iter()
        .map(|input| match input {
            Input::Message { name, .. } => {
                let binding = super::binding(name);
                quote!(#binding)
            }
            Input::Ctx => quote!(__noex_ctx),
            Input::Reply { .. } => reply.clone(),
            Input::Info { .. } => quote!(__noex_info),
            Input::Reason => quote!(__noex_reason),
        })
        .collect()
}

/// `self.method(args)` or `Self::method(args)`, awaited if the method is async.
fn invoke(method: &Method, arguments: Vec<TokenStream>) -> TokenStream {
    let ident = &method.ident;
    let call = if method.role == Role::Init {
        quote!(Self::#ident(#(#arguments),*))
    } else {
        quote!(self.#ident(#(#arguments),*))
    };
    if method.is_async {
        quote!(#call.await)
    } else {
        call
    }
}

/// A `GenServer` method returning a future: an `async fn` if `is_async`, else a plain `fn`
/// that runs `body` at once and returns a ready future. The process keeps room for the
/// largest of its handlers' futures for its whole life: a ready future takes none, where an
/// `async fn` holds its arguments.
fn future_fn(
    is_async: bool,
    name: TokenStream,
    inputs: TokenStream,
    output: TokenStream,
    body: TokenStream,
) -> TokenStream {
    if is_async {
        quote! {
            #[allow(deprecated)]
            async fn #name(#inputs) -> #output {
                #body
            }
        }
    } else {
        quote! {
            #[allow(deprecated, unreachable_code, clippy::unused_unit)]
            fn #name(#inputs) -> impl ::core::future::Future<Output = #output> + ::core::marker::Send {
                ::core::future::ready({ #body })
            }
        }
    }
}

/// `true` if some handler of `role` is an `async fn`.
fn any_async(behavior: &Behavior, role: Role) -> bool {
    with_role(behavior, role).any(|method| method.is_async)
}

/// The `GenServer` impl.
pub(super) fn gen_server(behavior: &Behavior, names: &Names) -> TokenStream {
    let noex = crate::expand::krate();
    let self_ty = &behavior.item.self_ty;
    let (impl_generics, _, where_clause) = behavior.item.generics.split_for_impl();
    let args_ty = args_type(behavior);
    let call_ty = enum_type(behavior, &names.call);
    let reply_ty = enum_type(behavior, &names.reply);
    let cast_ty = enum_type(behavior, &names.cast);
    let info = with_role(behavior, Role::Info).next();
    let info_ty = info
        .and_then(Method::info_type)
        .map_or_else(|| quote!(()), |ty| quote!(#ty));
    let init_fn = init_fn(behavior);
    let handle_call = handle_call(behavior, names);
    let handle_cast = handle_cast(behavior, names);
    let handle_info = info.map(|method| {
        let invoke = invoke(method, call_arguments(method, TokenStream::new()));
        future_fn(
            method.is_async,
            quote!(handle_info),
            quote!(&mut self, __noex_info: #noex::Info<Self::Info>, __noex_ctx: &mut #noex::Ctx<Self>),
            quote!(()),
            quote!(#invoke;),
        )
    });
    let terminate = with_role(behavior, Role::Terminate).next().map(|method| {
        let invoke = invoke(method, call_arguments(method, TokenStream::new()));
        future_fn(
            method.is_async,
            quote!(terminate),
            quote!(&mut self, __noex_reason: &#noex::ExitReason, __noex_ctx: &mut #noex::Ctx<Self>),
            quote!(()),
            quote!(#invoke;),
        )
    });
    let init_method = init(behavior);
    let init_error = match &init_method.output {
        Some(output) if returns_result(output) => {
            quote_spanned!(output.span()=> <#output as #noex::__private::InitResult>::Error)
        }
        _ => quote!(::core::convert::Infallible),
    };
    let remote_codec = behavior.local.is_none().then(|| {
        quote! {
            fn __remote_codec() -> ::core::option::Option<#noex::__private::Codec<Self>> {
                #[allow(unused_imports)]
                use #noex::__private::{ViaNothing as _, ViaRemote as _};
                (&#noex::__private::Probe::<Self>::new()).remote_codec()
            }
        }
    });
    let process_safe = message_types(behavior).map(|(method, ty)| {
        let cfgs = &method.cfgs;
        quote_spanned!(ty.span()=> #(#cfgs)* #noex::__private::assert_process_safe::<#ty>();)
    });
    quote! {
        #[automatically_derived]
        impl #impl_generics #noex::GenServer for #self_ty #where_clause {
            type Args = #args_ty;
            type Call = #call_ty;
            type Reply = #reply_ty;
            type Cast = #cast_ty;
            type Info = #info_ty;
            type InitError = #init_error;

            #init_fn
            #handle_call
            #handle_cast
            #handle_info
            #terminate
            #remote_codec
        }

        const _: () = {
            #[allow(dead_code)]
            fn __noex_process_safe #impl_generics () #where_clause {
                #(#process_safe)*
            }
        };
    }
}

/// Every type that travels in a message: arguments, replies, init arguments, infos; each
/// with its method (for its `#[cfg]`s).
pub(super) fn message_types(behavior: &Behavior) -> impl Iterator<Item = (&Method, &Type)> {
    behavior.methods.iter().flat_map(|method| {
        let arguments = method.messages().map(|(_, ty)| ty);
        let reply = match method.role {
            Role::Call => method.reply_type(),
            _ => None,
        };
        arguments
            .chain(reply)
            .chain(method.info_type())
            .map(move |ty| (method, ty))
    })
}

fn returns_result(output: &Type) -> bool {
    match output {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Result"),
        _ => false,
    }
}

fn init_fn(behavior: &Behavior) -> TokenStream {
    let noex = crate::expand::krate();
    let method = init(behavior);
    let names = super::bindings(method);
    let unpack = match names.as_slice() {
        [] => quote!(let _ = __noex_args;),
        [one] => quote!(let #one = __noex_args;),
        many => quote!(let (#(#many,)*) = __noex_args;),
    };
    let invoke = invoke(method, call_arguments(method, TokenStream::new()));
    let body = match &method.output {
        Some(output) if returns_result(output) => {
            quote!(#noex::__private::InitResult::into_result(#invoke))
        }
        _ => quote!(::core::result::Result::Ok(#invoke)),
    };
    // Always an `async fn`, even for a plain `fn`: its future lives only until `init` ends.
    quote! {
        #[allow(deprecated)]
        async fn init(
            __noex_args: Self::Args,
            __noex_ctx: &mut #noex::Ctx<Self>,
        ) -> ::core::result::Result<Self, Self::InitError> {
            #unpack
            #body
        }
    }
}

fn handle_call(behavior: &Behavior, names: &Names) -> TokenStream {
    let noex = crate::expand::krate();
    let call = &names.call;
    let reply = &names.reply;
    // `tail` ends the arm's block (the `Ok(())` of the synchronous version).
    let arm = |method: &Method, tail: TokenStream| {
        let variant = variant(method);
        let bindings = super::bindings(method);
        let body = match method.deferred_reply() {
            Some(ty) => {
                let adapt = if is_unit(ty) {
                    quote!(__noex_reply.adapt(|()| #reply::#variant))
                } else {
                    quote!(__noex_reply.adapt(#reply::#variant))
                };
                let invoke = invoke(method, call_arguments(method, adapt));
                quote!(#invoke;)
            }
            None => {
                let invoke = invoke(method, call_arguments(method, TokenStream::new()));
                match method.reply_type() {
                    Some(_) => quote! {
                        let __noex_value = #invoke;
                        __noex_reply.send(#reply::#variant(__noex_value));
                    },
                    None => quote! {
                        #invoke;
                        __noex_reply.send(#reply::#variant);
                    },
                }
            }
        };
        let cfgs = &method.cfgs;
        quote!(#(#cfgs)* #call::#variant(#(#bindings),*) => { #body #tail })
    };
    let arms = with_role(behavior, Role::Call).map(|method| arm(method, TokenStream::new()));
    let phantom = phantom_arm(behavior, call);
    let now = now_arms(behavior, Role::Call, |method| {
        arm(method, quote!(::core::result::Result::Ok(())))
    });
    let handle_now = now.map(|(arms, other)| {
        let other = other.then(
            || quote!(__noex_other => ::core::result::Result::Err((__noex_other, __noex_reply)),),
        );
        quote! {
            #[allow(deprecated, unreachable_code, unreachable_patterns, unused_braces)]
            fn __handle_call_now(
                &mut self,
                __noex_request: Self::Call,
                __noex_reply: #noex::ReplyTo<Self::Reply>,
                __noex_ctx: &mut #noex::Ctx<Self>,
            ) -> ::core::result::Result<(), (Self::Call, #noex::ReplyTo<Self::Reply>)> {
                match __noex_request {
                    #(#arms)*
                    #other
                    #phantom
                }
            }
        }
    });
    let handle_call = future_fn(
        any_async(behavior, Role::Call),
        quote!(handle_call),
        quote! {
            &mut self,
            __noex_request: Self::Call,
            __noex_reply: #noex::ReplyTo<Self::Reply>,
            __noex_ctx: &mut #noex::Ctx<Self>
        },
        quote!(()),
        quote! {
            match __noex_request {
                #(#arms)*
                #phantom
            }
        },
    );
    quote! {
        #handle_call
        #handle_now
    }
}

/// The arms of a `__handle_*_now` method: one per handler of `role` that is a plain `fn`,
/// and whether others (`async fn`s) remain; `None` if every handler is async.
fn now_arms(
    behavior: &Behavior,
    role: Role,
    arm: impl Fn(&Method) -> TokenStream,
) -> Option<(Vec<TokenStream>, bool)> {
    let (sync, other): (Vec<&Method>, Vec<&Method>) =
        with_role(behavior, role).partition(|method| !method.is_async);
    if sync.is_empty() {
        return None;
    }
    let arms = sync
        .into_iter()
        .map(|method| {
            let arm = arm(method);
            quote!(#arm,)
        })
        .collect();
    Some((arms, !other.is_empty()))
}

fn handle_cast(behavior: &Behavior, names: &Names) -> TokenStream {
    let noex = crate::expand::krate();
    let cast = &names.cast;
    let arm = |method: &Method, tail: TokenStream| {
        let variant = variant(method);
        let bindings = super::bindings(method);
        let invoke = invoke(method, call_arguments(method, TokenStream::new()));
        let cfgs = &method.cfgs;
        quote!(#(#cfgs)* #cast::#variant(#(#bindings),*) => { #invoke; #tail })
    };
    let arms = with_role(behavior, Role::Cast).map(|method| arm(method, TokenStream::new()));
    let phantom = phantom_arm(behavior, cast);
    let now = now_arms(behavior, Role::Cast, |method| {
        arm(method, quote!(::core::result::Result::Ok(())))
    });
    let handle_now = now.map(|(arms, other)| {
        let other =
            other.then(|| quote!(__noex_other => ::core::result::Result::Err(__noex_other),));
        quote! {
            #[allow(deprecated, unreachable_code, unreachable_patterns, unused_braces)]
            #[inline]
            fn __handle_cast_now(
                &mut self,
                __noex_message: Self::Cast,
                __noex_ctx: &mut #noex::Ctx<Self>,
            ) -> ::core::result::Result<(), Self::Cast> {
                match __noex_message {
                    #(#arms)*
                    #other
                    #phantom
                }
            }
        }
    });
    let handle_cast = future_fn(
        any_async(behavior, Role::Cast),
        quote!(handle_cast),
        quote!(&mut self, __noex_message: Self::Cast, __noex_ctx: &mut #noex::Ctx<Self>),
        quote!(()),
        quote! {
            match __noex_message {
                #(#arms)*
                #phantom
            }
        },
    );
    quote! {
        #handle_cast
        #handle_now
    }
}
