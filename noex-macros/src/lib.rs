//! Procedural macros for [noex](https://docs.rs/noex): `#[behavior]`, and `#[remote]` for
//! hand-written `GenServer`s.
//!
//! Use them through the `noex` crate (`noex::behavior`); the crate's README shows what is
//! generated for a small example.

mod ast;
mod attr;
mod expand;
mod valid;

use proc_macro::TokenStream;

#[proc_macro_attribute]
pub fn behavior(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::behavior(args.into(), input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[proc_macro_attribute]
pub fn remote(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::hand_written::remote(args.into(), input.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
