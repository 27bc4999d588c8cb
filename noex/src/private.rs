//! Support for the code `#[behavior]` generates. Not a public API: names and signatures
//! change without notice.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::behavior::{BehaviorEntry, LocalBehaviorEntry, SpawnFuture, SpawnParams};
pub use crate::dist::remote::{codec, tagged_codec, Codec};
pub use crate::dist::tagged::{
    end as wire_end, put_bytes, put_tag, put_value, unknown_tag as unknown_wire_tag,
    Error as WireError, Input as WireInput, TagBytes, Tagged,
};
pub use crate::server::reference::DEFAULT_CALL_TIMEOUT;
pub use inventory;
pub use serde;

use crate::behavior::{BehaviorName, SpawnByNameError};
use crate::server::GenServer;
use crate::Node;

/// Picks a behaviour's codec if it implements `RemoteBehavior`, `None` otherwise, without
/// an error either way (autoref specialization): `(&Probe::<B>::new()).remote_codec()`.
/// Where `RemoteBehavior` is not implemented because a message type is not serializable,
/// the errors that say so point at that type, and this stays quiet.
pub struct Probe<B>(PhantomData<B>);

impl<B> Probe<B> {
    /// A probe for `B`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Probe(PhantomData)
    }
}

/// The codec of a remote-capable behaviour.
pub trait ViaRemote<B: GenServer> {
    /// `Some(codec)`.
    fn remote_codec(&self) -> Option<Codec<B>>;
}

impl<B: crate::RemoteBehavior> ViaRemote<B> for Probe<B> {
    fn remote_codec(&self) -> Option<Codec<B>> {
        Some(B::codec())
    }
}

/// No codec, for every other behaviour.
pub trait ViaNothing<B: GenServer> {
    /// `None`.
    fn remote_codec(&self) -> Option<Codec<B>>;
}

impl<B: GenServer> ViaNothing<B> for &Probe<B> {
    fn remote_codec(&self) -> Option<Codec<B>> {
        None
    }
}

/// The wire tag of `method` of `behavior`: FNV-1a (32 bits) of `behavior::method`.
pub const fn tag(behavior: &str, method: &str) -> u32 {
    const PRIME: u32 = 0x0100_0193;
    let mut hash: u32 = 0x811c_9dc5;
    let parts = [behavior.as_bytes(), b"::", method.as_bytes()];
    let mut p = 0;
    while p < parts.len() {
        let bytes = parts[p];
        let mut i = 0;
        while i < bytes.len() {
            hash ^= bytes[i] as u32;
            hash = hash.wrapping_mul(PRIME);
            i += 1;
        }
        p += 1;
    }
    hash
}

/// `true` if no two tags are equal (checked at compile time by the generated code).
pub const fn distinct(tags: &[u32]) -> bool {
    let mut i = 0;
    while i < tags.len() {
        let mut j = i + 1;
        while j < tags.len() {
            if tags[i] == tags[j] {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// What an `#[init]` method returning a `Result` (under any alias) fails with. The error's
/// bounds are left to `GenServer::InitError`, so that an error type without them is
/// reported once, by that bound.
pub trait InitResult {
    /// The state built.
    type Ok;
    /// The error.
    type Error;
    /// The result itself.
    fn into_result(self) -> Result<Self::Ok, Self::Error>;
}

impl<T, E> InitResult for Result<T, E> {
    type Ok = T;
    type Error = E;

    fn into_result(self) -> Result<T, E> {
        self
    }
}

/// A type that can travel between nodes.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent to another node",
    label = "this type is not serde-serializable",
    note = "the arguments, replies, infos and init arguments of a remote-capable behaviour \
            (a hand-written one's `Args`, `Call`, `Reply`, `Cast` and `Info`) must implement \
            serde's `Serialize` and `DeserializeOwned` (derive them)",
    note = "or make the behaviour local-only: `#[behavior(local)]` on its impl block, or no \
            `#[noex::remote]` on a hand-written `impl GenServer`"
)]
pub trait RemoteMessage: Serialize + DeserializeOwned {}

impl<T: Serialize + DeserializeOwned> RemoteMessage for T {}

/// The `Serialize` half of [`RemoteMessage`], with its error message.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be sent to another node",
    label = "this type is not serde-serializable",
    note = "the arguments, replies, infos and init arguments of a remote-capable behaviour \
            (a hand-written one's `Args`, `Call`, `Reply`, `Cast` and `Info`) must implement \
            serde's `Serialize` and `DeserializeOwned` (derive them)",
    note = "or make the behaviour local-only: `#[behavior(local)]` on its impl block, or no \
            `#[noex::remote]` on a hand-written `impl GenServer`"
)]
pub trait RemoteSerialize: Serialize {}

impl<T: Serialize> RemoteSerialize for T {}

/// Compile-time check that `T` can travel between nodes, with one error for a type that
/// cannot: `(&RemoteCheck::<T>::new()).check::<T>()`, the type given again to `check` so that
/// the error points at all of it (a method's error points at its turbofish argument, not at
/// the receiver's). A bound `T: RemoteMessage` gives an error
/// per serde trait missing, two for a type that is neither `Serialize` nor `Deserialize`.
/// So this requires `T: RemoteMessage` of a `Serialize` type ([`CheckAll`]), where only
/// `Deserialize` can be missing, and `T: RemoteSerialize` of any other ([`CheckSerialize`]):
/// autoref specialization, as [`Probe`].
pub struct RemoteCheck<T>(PhantomData<T>);

impl<T> RemoteCheck<T> {
    /// A check of `T`.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        RemoteCheck(PhantomData)
    }
}

/// The check of a `Serialize` type.
pub trait CheckAll<T> {
    /// Requires `U: RemoteMessage` (`U` is `T`).
    fn check<U>(&self)
    where
        U: RemoteMessage,
    {
    }
}

impl<T: Serialize> CheckAll<T> for RemoteCheck<T> {}

/// The check of any other type.
pub trait CheckSerialize<T> {
    /// Requires `U: RemoteSerialize` (`U` is `T`), which fails.
    fn check<U>(&self)
    where
        U: RemoteSerialize,
    {
    }
}

impl<T> CheckSerialize<T> for &RemoteCheck<T> {}

/// A type that can live in a process's messages.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of a message",
    label = "messages move between threads, so this type must be `Send + 'static`",
    note = "use an owned, thread-safe type (`String` rather than `&str`, `Arc` rather than `Rc`)"
)]
pub trait ProcessSafe: Send + 'static {}

impl<T: Send + 'static> ProcessSafe for T {}

/// Compile-time check that `T` can live in a process.
pub fn assert_process_safe<T: ProcessSafe>() {}

/// Serializes a tagged message: the tag, then the payload.
pub fn serialize_tagged<S: Serializer, P: Serialize + ?Sized>(
    serializer: S,
    tag: u32,
    payload: &P,
) -> Result<S::Ok, S::Error> {
    let mut tuple = serializer.serialize_tuple(2)?;
    tuple.serialize_element(&tag)?;
    tuple.serialize_element(payload)?;
    tuple.end()
}

/// A message enum that decodes from its tag and payload.
pub trait FromTagged: Sized {
    /// The behaviour's name, for error messages.
    const BEHAVIOR: &'static str;

    /// Decodes the payload of the message with `tag` from the rest of `seq`.
    fn from_tagged<'de, A: SeqAccess<'de>>(tag: u32, seq: A) -> Result<Self, A::Error>;
}

/// Deserializes a message written by [`serialize_tagged`]; an unknown tag is an error.
pub fn deserialize_tagged<'de, D: Deserializer<'de>, T: FromTagged>(
    deserializer: D,
) -> Result<T, D::Error> {
    struct TaggedVisitor<T>(PhantomData<T>);

    impl<'de, T: FromTagged> Visitor<'de> for TaggedVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a message of behaviour {}", T::BEHAVIOR)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
            let tag: u32 = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(0, &self))?;
            T::from_tagged(tag, seq)
        }
    }

    deserializer.deserialize_tuple(2, TaggedVisitor(PhantomData))
}

/// A `Vec<u8>` argument or reply, encoded as one block of bytes rather than byte by byte.
/// (postcard writes a sequence of `u8`s and a block of bytes identically — a length, then
/// the bytes — so this changes the speed, not the format.)
pub struct AsBytes<'a>(pub &'a Vec<u8>);

impl Serialize for AsBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Decodes what [`AsBytes`] encodes.
pub struct ByteBuf(pub Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = ByteBuf;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }

            fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(bytes.to_vec()))
            }

            fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(bytes))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(byte) = seq.next_element()? {
                    bytes.push(byte);
                }
                Ok(ByteBuf(bytes))
            }
        }

        deserializer.deserialize_byte_buf(BytesVisitor)
    }
}

/// Decodes the payload that follows a tag.
pub fn payload<'de, A: SeqAccess<'de>, P: Deserialize<'de>>(mut seq: A) -> Result<P, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::custom("a message without its payload"))
}

/// The error for a tag no method of the behaviour has (a message from a different build).
pub fn unknown_tag<E: de::Error>(behavior: &str, tag: u32) -> E {
    E::custom(format_args!(
        "behaviour {behavior} has no message with tag {tag:#010x} (a different build?)"
    ))
}

/// The spawn function of a behaviour's registry entry. It decodes the arguments with the
/// behaviour's codec, so it asks nothing of `B::Args`: an `Args` that is not a serde type
/// is reported once, at that type, not again here.
pub fn spawn_encoded<'a, B>(node: &'a Node, args: &'a [u8], params: SpawnParams) -> SpawnFuture<'a>
where
    B: GenServer + BehaviorName,
{
    Box::pin(async move {
        // A behaviour with a registry entry has a codec (or the program does not compile).
        let Some(codec) = B::__remote_codec() else {
            return Err(SpawnByNameError::LocalOnly(B::NAME.to_owned()));
        };
        let args: B::Args =
            (codec.decode_args)(args).map_err(|error| SpawnByNameError::BadArgs {
                behavior: B::NAME.to_owned(),
                args_type: std::any::type_name::<B::Args>(),
                error: error.to_string(),
            })?;
        match node.spawn_with_params::<B>(args, params).await {
            Ok(server) => Ok(server.pid().clone()),
            Err(error) => Err(SpawnByNameError::from_spawn(B::NAME, error)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_fnv1a_of_behavior_and_method() {
        // FNV-1a 32 of "a::b", computed independently.
        assert_eq!(tag("a", "b"), 0xf3f5_741e);
        assert_ne!(tag("worker", "status"), tag("worker", "work"));
        assert_eq!(tag("worker", "status"), tag("worker", "status"));
    }

    #[test]
    fn distinct_finds_collisions() {
        assert!(distinct(&[1, 2, 3]));
        assert!(!distinct(&[1, 2, 1]));
    }
}

pin_project_lite::pin_project! {
    /// The future of a generated call method: the call's future, with its reply (the
    /// behaviour's reply enum) unpacked into the method's return value. (A struct rather
    /// than an `async` block: it adds nothing to the call's future but the closure, which
    /// captures nothing.)
    pub struct Unpack<F, U> {
        #[pin]
        call: F,
        unpack: U,
    }
}

impl<F, U> Unpack<F, U> {
    /// Unpacks the reply of `call` with `unpack`.
    pub fn new<R, T>(call: F, unpack: U) -> Self
    where
        F: std::future::Future<Output = Result<R, crate::CallError>>,
        U: Fn(R) -> Result<T, crate::CallError>,
    {
        Unpack { call, unpack }
    }
}

impl<F, U, R, T> std::future::Future for Unpack<F, U>
where
    F: std::future::Future<Output = Result<R, crate::CallError>>,
    U: Fn(R) -> Result<T, crate::CallError>,
{
    type Output = Result<T, crate::CallError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        this.call.poll(cx).map(|reply| reply.and_then(this.unpack))
    }
}
