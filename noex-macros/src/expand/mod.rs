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

use std::cell::RefCell;

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::{Item, ItemImpl, ItemStruct};

use crate::ast::{self, Behavior, Method};
use crate::attr::{self, Role};
use crate::valid;

pub(crate) fn behavior(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    let args = attr::behavior_args(args)?;
    let _krate = KrateGuard::set(args.krate.clone());
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
    let noex = crate::expand::krate();
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

        impl #impl_generics #noex::BehaviorName for #ident #ty_generics #where_clause {
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

thread_local! {
    /// The path of the noex crate in the code being generated: `::noex`, or the one given
    /// with `#[behavior(crate = path)]`. Set for the time of one expansion.
    static KRATE: RefCell<Option<syn::Path>> = const { RefCell::new(None) };
}

/// The path generated code names the noex crate by (`::noex` unless `crate = ..` was
/// given): a `syn::Path`, which, unlike a `TokenStream`, is no iterator, so it can be
/// interpolated in a `quote!` repetition.
pub(crate) fn krate() -> syn::Path {
    KRATE
        .with(|krate| krate.borrow().clone())
        .unwrap_or_else(|| syn::parse_quote!(::noex))
}

/// Sets the crate path for one expansion, and resets it when dropped.
pub(crate) struct KrateGuard(Option<syn::Path>);

impl KrateGuard {
    pub(crate) fn set(krate: Option<syn::Path>) -> Self {
        KrateGuard(KRATE.with(|current| current.replace(krate)))
    }
}

impl Drop for KrateGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        KRATE.with(|current| *current.borrow_mut() = previous);
    }
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
/// name. An argument's leading underscores become a count (`_why` → `__noex_arg1_why`),
/// so that the name stays snake case (a `__` inside one is not) and distinct from the
/// binding of the same name without them.
pub(crate) fn binding(name: &Ident) -> Ident {
    let text = name.unraw().to_string();
    let bare = text.trim_start_matches('_');
    match text.len() - bare.len() {
        0 => format_ident!("__noex_arg_{}", bare, span = name.span()),
        leading => format_ident!("__noex_arg{}_{}", leading, bare, span = name.span()),
    }
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

#[cfg(test)]
mod tests {
    use quote::quote;

    /// Whether `tokens` name a path starting with `noex` (`::noex::..` or `noex::..`).
    fn names_noex(tokens: &proc_macro2::TokenStream) -> bool {
        let text = tokens.to_string();
        text.contains(":: noex ::") || text.starts_with("noex ::") || text.contains(" noex ::")
    }

    #[test]
    fn crate_option_replaces_every_noex_path() {
        let methods = quote! {
            impl Counter {
                #[init]
                fn init(start: u64) -> Result<Self, String> { Ok(Counter(start)) }
                #[call]
                fn get(&self) -> u64 { self.0 }
                #[call]
                async fn echo(&self, data: Vec<u8>) -> Vec<u8> { data }
                #[cast]
                fn add(&mut self, n: u64) { self.0 += n; }
                #[cast]
                #[tag = 7]
                fn reset(&mut self) { self.0 = 0; }
                #[info]
                async fn tick(&mut self, info: Info<u8>) { let _ = info; }
                #[terminate]
                fn bye(&mut self) {}
            }
        };
        for (args, item) in [
            (
                quote!(crate = actors),
                quote!(
                    struct Counter(u64);
                ),
            ),
            (
                quote!(crate = "actors", name = "c"),
                quote!(
                    struct Counter(u64);
                ),
            ),
            (quote!(crate = actors), methods.clone()),
            (quote!(crate = actors, local), methods.clone()),
        ] {
            let expanded = super::behavior(args.clone(), item).expect("expands");
            let text = expanded.to_string();
            assert!(!text.contains("compile_error"), "{args}: {text}");
            assert!(text.contains("actors ::"), "{args}: {text}");
            assert!(!names_noex(&expanded), "{args} names noex: {text}");
        }
        let default = super::behavior(quote!(), methods).expect("expands");
        assert!(names_noex(&default), "the default path is ::noex");
        // The option of one expansion does not stay for the next.
        let krate = super::krate();
        assert_eq!(quote!(#krate).to_string(), ":: noex");
    }

    #[test]
    fn remote_crate_option_replaces_every_noex_path() {
        let item = quote! {
            impl GenServer for Hand {
                type Args = u64;
                type Call = ();
                type Reply = u64;
                type Cast = u64;
                type Info = ();
                type InitError = std::convert::Infallible;
            }
        };
        let expanded = super::hand_written::remote(quote!(crate = actors), item).expect("expands");
        let text = expanded.to_string();
        assert!(text.contains("actors ::"), "{text}");
        assert!(!names_noex(&expanded), "names noex: {text}");
    }
}
