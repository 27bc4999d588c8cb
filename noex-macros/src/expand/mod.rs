//! Code generation from the validated model.
//!
//! For `#[behavior] impl Worker { .. }` this emits, next to the impl block itself:
//!
//! * `__NoexWorkerCall`, `__NoexWorkerReply`, `__NoexWorkerCast`: hidden enums with one
//!   variant per `#[call]` / `#[cast]` method ([`server`]);
//! * `impl GenServer for Worker`, dispatching each variant to its method ([`server`]);
//! * `trait WorkerApi`, one typed method per message, for every `ServerHandle<Worker>`
//!   ([`api`]);
//! * unless the behaviour is `local`: tagged serde impls of the enums, `RemoteBehavior`
//!   with the wire tags, and a registry entry for spawning by name ([`remote`]).

mod api;
pub(crate) mod hand_written;
mod remote;
mod server;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::{Item, ItemImpl, ItemStruct};

use crate::ast::{self, Behavior, Method};
use crate::attr::{self, Role};
use crate::valid;

pub(crate) fn behavior(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let args = attr::behavior_args(args)?;
    match syn::parse2::<Item>(input)? {
        Item::Struct(item) => expand_struct(args, item),
        Item::Impl(item) => expand_impl(args, item),
        other => Err(syn::Error::new_spanned(
            other,
            "#[behavior] goes on a struct and on that struct's impl block",
        )),
    }
}

/// The struct: unchanged, plus its `BehaviorName`.
fn expand_struct(args: attr::BehaviorArgs, item: ItemStruct) -> syn::Result<TokenStream> {
    if let Some(span) = args.local {
        return Err(syn::Error::new(
            span,
            "`local` goes on the impl block: #[behavior(local)] impl ...",
        ));
    }
    let ident = &item.ident;
    // An empty name is an error, but the struct and its `BehaviorName` are still emitted,
    // so that the error is not followed by others wherever the struct is used.
    let empty_name = args
        .name
        .as_ref()
        .filter(|name| name.value().is_empty())
        .map(|name| {
            syn::Error::new_spanned(name, "a behaviour name cannot be empty").into_compile_error()
        });
    let name = match &args.name {
        Some(name) => quote!(#name),
        None => quote!(::core::concat!(
            ::core::module_path!(),
            "::",
            ::core::stringify!(#ident)
        )),
    };
    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();
    Ok(quote! {
        #item

        impl #impl_generics ::noex::BehaviorName for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
        }

        #empty_name
    })
}

/// The impl block: everything else.
fn expand_impl(args: attr::BehaviorArgs, item: ItemImpl) -> syn::Result<TokenStream> {
    if let Some(name) = &args.name {
        return Err(syn::Error::new_spanned(
            name,
            "the name goes on the struct: #[behavior(name = \"...\")] struct ...",
        ));
    }
    let behavior = ast::parse(item, args.local)?;
    if let Err(error) = valid::check(&behavior) {
        // Keep the impl block (markers removed), so its methods still exist and the error
        // is not followed by "no method named ..." wherever they are used.
        let error = error.into_compile_error();
        let item = &behavior.item;
        return Ok(quote!(#item #error));
    }
    let names = Names::new(&behavior.ident);
    let item = &behavior.item;
    let enums = server::enums(&behavior, &names);
    let gen_server = server::gen_server(&behavior, &names);
    let api = api::client_trait(&behavior, &names);
    let remote = if behavior.local.is_none() {
        remote::remote(&behavior, &names)
    } else if behavior.item.generics.params.is_empty() {
        remote::local_entry(&behavior)
    } else {
        TokenStream::new()
    };
    Ok(quote! {
        #item

        #enums

        #api

        const _: () = {
            #gen_server
            #remote
        };
    })
}

/// Names of the generated items of one behaviour.
pub(crate) struct Names {
    pub(crate) call: Ident,
    pub(crate) reply: Ident,
    pub(crate) cast: Ident,
    pub(crate) api: Ident,
}

impl Names {
    fn new(ident: &Ident) -> Self {
        Names {
            call: format_ident!("__Noex{}Call", ident),
            reply: format_ident!("__Noex{}Reply", ident),
            cast: format_ident!("__Noex{}Cast", ident),
            api: format_ident!("{}Api", ident),
        }
    }
}

/// The enum variant of a method: `get_status` → `GetStatus`.
pub(crate) fn variant(method: &Method) -> Ident {
    let name = method.ident.unraw().to_string();
    let camel: String = name
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect();
    Ident::new(&camel, method.ident.span())
}

/// The name a message argument is bound to in generated code: prefixed, so that it shadows
/// nothing the generated code uses (an argument named `serializer`), and is no constant's
/// name.
pub(crate) fn binding(name: &Ident) -> Ident {
    format_ident!("__noex_arg_{}", name.unraw(), span = name.span())
}

/// The bindings of a method's message arguments, in order.
pub(crate) fn bindings(method: &Method) -> Vec<Ident> {
    method.messages().map(|(name, _)| binding(name)).collect()
}

/// The methods with one role, in declaration order.
pub(crate) fn with_role(behavior: &Behavior, role: Role) -> impl Iterator<Item = &Method> {
    behavior.methods.iter().filter(move |m| m.role == role)
}

/// The `#[init]` method (validation guarantees there is one).
pub(crate) fn init(behavior: &Behavior) -> &Method {
    with_role(behavior, Role::Init)
        .next()
        .expect("validated: one #[init]")
}
