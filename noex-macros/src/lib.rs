//! Procedural macros for [noex](https://docs.rs/noex).
//!
//! This crate is a placeholder: `#[behavior]` and `register_all!()` arrive with the
//! macros issue. Until then, behaviours are written by implementing `noex::GenServer`
//! by hand.
