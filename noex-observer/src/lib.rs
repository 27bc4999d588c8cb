//! `noex-observer`: a terminal program that joins a noex cluster as a
//! [hidden](noex::ClusterConfig::hidden) node and shows it live — its nodes with their
//! traffic, the processes of a node, the supervision trees, one process in detail — and
//! stops or kills a process on request.
//!
//! ```text
//! cargo run -p noex-observer -- --seed supervisor@127.0.0.1:4370 --secret "noex worker_pool demo"
//! ```
//!
//! The observer hosts no user processes and is left out of the members' node lists, node
//! selectors and member counts. It refreshes about once a second, reading every node's
//! overview and, in depth, only what is on screen (see [`poll`]), through the agent each
//! node runs (see [`noex::observe`]).
//!
//! The program is a library and a thin binary, so that tests reach every part:
//!
//! - [`model`]: the plain data the screen shows, and what the user selected;
//! - [`poll`]: fills the model from the cluster, once per refresh, and carries out actions;
//! - [`view`]: draws the model with ratatui;
//! - [`app`]: what each key does to the model;
//! - [`cli`]: the command line.
//!
//! The binary runs the noex node (the poller is a task on it) and the user interface on
//! the main thread; they share the model behind a mutex, and the interface sends the
//! poller [`Command`](poll::Command)s on a channel.

#![warn(missing_docs)]

pub mod app;
pub mod cli;
pub mod model;
pub mod poll;
pub mod view;
