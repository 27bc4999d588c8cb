//! The public API's common traits, checked so that a regression fails the build of this test:
//! handles and errors are `Send + Sync + 'static` (they cross threads and tasks, and go into
//! `Box<dyn Error + Send + Sync>` and `anyhow`), errors implement `std::error::Error` with a
//! lowercase message without trailing punctuation, and the value types a user keeps in
//! collections or compares in tests implement `Debug`, `Clone`, `Eq` and `Hash`.

use std::error::Error;
use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::time::Duration;

use noex::supervisor::{
    AutoShutdown, ChildKey, ChildKind, Restart, Shutdown, Strategy, SupervisorError,
    SupervisorInitError,
};
use noex::{
    BehaviorInfo, BuildError, CallError, CastError, ClusterConfig, ConfigError, Ctx,
    DiscoveryError, Events, ExitReason, ForgetError, GenServer, GlobalError, LookupError,
    MonitorRef, NamedRef, Node, NodeBuilder, NodeId, NodeIdError, NodeStatus, Observer, Pid,
    RegisterError, RegistryError, RemoteSpawnError, ReplyTo, SendError, ServerRef,
    SpawnByNameError, SpawnError, SpawnOptions, StartError, Subscription, Target, TimerRef,
};

/// A behaviour that does nothing.
struct Idle;

impl GenServer for Idle {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type InitError = std::convert::Infallible;

    async fn init(_: (), _: &mut Ctx<Self>) -> Result<Self, Self::InitError> {
        Ok(Idle)
    }
}

fn send_sync<T: Send + Sync + 'static>() {}
fn send<T: Send + 'static>() {}
fn error<E: Error + Send + Sync + 'static>() {}
fn value<T: Debug + Clone + PartialEq + Eq + Hash>() {}
fn comparable<T: Debug + Clone + PartialEq + Eq>() {}
fn display<T: Display>() {}

/// Every behaviour's handles, not only one's: the bounds hold for any `B`.
#[allow(dead_code)]
fn handles_of<B: GenServer>() {
    send_sync::<ServerRef<B>>();
    send_sync::<NamedRef<B>>();
    send_sync::<ReplyTo<B::Reply>>();
    send::<Ctx<B>>();
    comparable::<ServerRef<B>>();
}

#[test]
fn handles_are_send_sync_and_static() {
    send_sync::<Node>();
    send_sync::<Pid>();
    send_sync::<NodeId>();
    send_sync::<MonitorRef>();
    send_sync::<ExitReason>();
    send_sync::<TimerRef>();
    send_sync::<Observer>();
    send_sync::<Events>();
    send_sync::<Subscription<noex::ClusterEvent>>();
    send_sync::<ClusterConfig>();
    send_sync::<NodeBuilder>();
    send_sync::<SpawnOptions>();
    send_sync::<noex::ChildSpec>();
    send_sync::<noex::SupervisorSpec>();
    send_sync::<noex::supervisor::ChildTemplate>();
    send_sync::<noex::supervisor::Backoff>();
    send_sync::<noex::NodeSelector>();
    send_sync::<noex::StaticSeeds>();
    send_sync::<noex::DnsSeeds>();
    send_sync::<noex::Bytes>();
    send_sync::<noex::LifecycleEvent>();
    send_sync::<noex::ClusterEvent>();
    send_sync::<noex::GlobalEvent>();
    send_sync::<noex::GroupEvent>();
    send_sync::<noex::ProcessInfo>();
    handles_of::<Idle>();
}

#[test]
fn errors_are_send_sync_static_errors() {
    error::<CallError>();
    error::<SendError>();
    error::<CastError<String>>();
    error::<LookupError>();
    error::<GlobalError>();
    error::<RegisterError>();
    error::<SpawnError<String>>();
    error::<SpawnError<std::io::Error>>();
    error::<SpawnError<std::convert::Infallible>>();
    error::<RemoteSpawnError>();
    error::<SpawnByNameError>();
    error::<RegistryError>();
    error::<BuildError>();
    error::<StartError>();
    error::<ConfigError>();
    error::<NodeIdError>();
    error::<ForgetError>();
    error::<DiscoveryError>();
    error::<SupervisorError>();
    error::<SupervisorInitError>();
    #[cfg(feature = "tls")]
    error::<noex::TlsError>();
}

/// One value of each error type, as a user's `?` would meet it.
fn samples() -> Vec<Box<dyn Error + Send + Sync>> {
    let node: NodeId = "a@127.0.0.1:4000".parse().unwrap();
    fn boxed<E: Error + Send + Sync + 'static>(
        result: Result<(), E>,
    ) -> Result<(), Box<dyn Error + Send + Sync>> {
        result?;
        Ok(())
    }
    let results = [
        boxed(Err(CallError::Timeout {
            timeout: Duration::from_secs(5),
        })),
        boxed(Err(SendError::Overloaded)),
        boxed(Err(CastError::new(SendError::Overloaded, 7u64))),
        boxed(Err(LookupError::NotFound("worker".into()))),
        boxed(Err(GlobalError::ShuttingDown)),
        boxed(Err(RegisterError::NoProc)),
        boxed(Err(SpawnError::<String>::InitFailed("no disk".into()))),
        boxed(Err(RemoteSpawnError::NoConnection { node: node.clone() })),
        boxed(Err(SpawnByNameError::NotFound("worker".into()))),
        boxed(Err(RegistryError::DuplicateName {
            name: "worker".into(),
            first: "a::Worker",
            second: "b::Worker",
        })),
        boxed(Err(BuildError::Threads(std::io::Error::other(
            "no threads",
        )))),
        boxed(Err(StartError::Config(ConfigError::ZeroConnectTimeout))),
        boxed(Err(ConfigError::ZeroConnectTimeout)),
        boxed(Err("a".parse::<NodeId>().unwrap_err())),
        boxed(Err(ForgetError::Connected { node })),
        boxed(Err(DiscoveryError::Io(std::io::Error::other("unreadable")))),
        boxed(Err(DiscoveryError::Resolve {
            name: "seeds:4000".into(),
            error: std::io::Error::other("no such host"),
        })),
        boxed(Err(SupervisorError::NotDistributed)),
        boxed(Err(SupervisorInitError::InvalidSpec("no children".into()))),
        boxed(Err(SupervisorError::Call(CallError::NoProc {
            target: Target::Global {
                name: "worker".into(),
            },
        }))),
    ];
    results.into_iter().map(Result::unwrap_err).collect()
}

#[test]
fn errors_convert_with_the_question_mark_and_read_as_messages() {
    for error in samples() {
        let message = error.to_string();
        let first = message.chars().next().unwrap();
        assert!(!first.is_uppercase(), "{message:?} should start lowercase");
        assert!(
            !message.ends_with(['.', '!', '\n']),
            "{message:?} should not end with punctuation"
        );
    }
}

/// An error tells its cause once: in its message, or as its `source()`, not both (a report
/// such as `anyhow`'s `{:?}` prints the message, then each source).
#[test]
fn no_error_repeats_its_source_in_its_message() {
    for error in samples() {
        let mut error: &(dyn Error + 'static) = &*error;
        while let Some(source) = error.source() {
            let (message, cause) = (error.to_string(), source.to_string());
            assert!(
                !message.contains(&cause),
                "{message:?} repeats its source {cause:?}"
            );
            error = source;
        }
    }
}

/// A behaviour whose messages can cross nodes, for `named_on`.
#[noex::behavior]
pub struct Remote;

#[noex::behavior]
impl Remote {
    #[init]
    fn init() -> Self {
        Remote
    }
}

/// A `NamedRef`'s `Debug` tells where its name is registered: refs of one name on this
/// node, on another and in the global registry reach different processes.
#[test]
fn named_refs_print_where_their_name_is() {
    let node = Node::new();
    let other: NodeId = "b@10.0.0.2:4000".parse().unwrap();
    assert_eq!(
        format!("{:?}", node.named::<Remote>("cache")),
        r#"NamedRef("cache")"#
    );
    assert_eq!(
        format!("{:?}", node.named_on::<Remote>("cache", &other)),
        r#"NamedRef("cache", on b@10.0.0.2:4000)"#
    );
    assert_eq!(
        format!("{:?}", node.named_global::<Remote>("cache")),
        r#"NamedRef("cache", global)"#
    );
    node.shutdown();
}

#[test]
fn value_types_are_comparable_hashable_and_printable() {
    value::<Pid>();
    value::<NodeId>();
    value::<MonitorRef>();
    value::<ExitReason>();
    value::<Target>();
    value::<BehaviorInfo>();
    value::<ChildKey>();
    value::<Strategy>();
    value::<Restart>();
    value::<Shutdown>();
    value::<AutoShutdown>();
    value::<ChildKind>();
    value::<NodeStatus>();
    display::<Pid>();
    display::<NodeId>();
    display::<MonitorRef>();
    display::<ExitReason>();
    display::<Target>();
    display::<ChildKey>();
}

/// A task's handle is named through noex (`Node::spawn_task` returns it).
#[test]
fn a_task_handle_is_named_through_noex() {
    let node = noex::Node::new();
    let task: noex::Task<u8> = node.spawn_task(async { 7 });
    assert_eq!(node.block_on(task), 7);
    node.shutdown();
}
