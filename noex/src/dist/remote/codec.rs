//! How a behaviour's messages are encoded on the wire and decoded back: its [`Codec`],
//! which `#[behavior]` builds with [`tagged_codec`] (or, for serde types, [`codec`]).

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::super::tagged::Tagged;
use super::super::wire;
use super::apart::{encode_within, Bounded};
use crate::behavior::BehaviorName;
use crate::server::{Ctx, GenServer};

/// How the messages of behaviour `B` are encoded on the wire. Built by
/// `RemoteBehavior::codec` (which `#[behavior]` writes).
#[doc(hidden)]
pub struct Codec<B: GenServer> {
    pub(crate) name: &'static str,
    pub(crate) hash: u32,
    pub(super) encode_call: Bounded<B::Call>,
    pub(crate) decode_call: Decode<B::Call>,
    pub(crate) encode_reply: Bounded<B::Reply>,
    pub(super) decode_reply: Decode<B::Reply>,
    pub(super) encode_cast: Bounded<B::Cast>,
    pub(crate) decode_cast: Decode<B::Cast>,
    /// Decodes a cast and hands it to the behaviour's handler if that does not await.
    pub(crate) handle_cast: HandleCast<B>,
    pub(super) encode_info: Bounded<B::Info>,
    pub(crate) decode_info: Decode<B::Info>,
    /// Encodes the init arguments, for a spawn on another node by a process that knows
    /// the behaviour only as `B` (a supervisor placing a child).
    pub(crate) encode_args: Encode<B::Args>,
    /// Decodes the init arguments of a spawn by name.
    pub(crate) decode_args: Decode<B::Args>,
}

/// Appends a value, encoded, to a buffer.
pub(crate) type Encode<T> = fn(&T, &mut Vec<u8>) -> Result<(), postcard::Error>;

/// Decodes a value from bytes.
type Decode<T> = fn(&[u8]) -> Result<T, postcard::Error>;

/// Decodes a cast and runs its handler at once if that does not await (`Ok(Err)`: the
/// message, for the handler that does). One function, with the decoding inlined, so the
/// message goes from the bytes to the handler without being moved through an envelope
/// (each move of a freshly written value can stall on store forwarding).
pub(crate) type HandleCast<B> =
    fn(&mut B, &[u8], &mut Ctx<B>) -> Result<Result<(), <B as GenServer>::Cast>, postcard::Error>;

fn handle_cast<B, D>(
    state: &mut B,
    bytes: &[u8],
    ctx: &mut Ctx<B>,
) -> Result<Result<(), B::Cast>, postcard::Error>
where
    B: GenServer,
    D: DecodeCast<B::Cast>,
{
    // A `Deserialize` impl that panics on these bytes drops the cast, as one that errors
    // does (and as the casts of a short run, decoded as they are queued, are dropped): bad
    // input from the network does not end the process. Only the decoding is guarded; a
    // handler's panic ends its process as ever.
    let message = match std::panic::catch_unwind(|| D::decode(bytes)) {
        Ok(decoded) => decoded?,
        Err(_) => return Err(postcard::Error::SerdeDeCustom),
    };
    Ok(state.__handle_cast_now(message, ctx))
}

/// How a codec decodes its casts in [`handle_cast`]: a type rather than a function
/// pointer, so that the decoding is inlined there.
trait DecodeCast<T> {
    fn decode(bytes: &[u8]) -> Result<T, postcard::Error>;
}

/// Casts that are serde types.
struct Serde;

/// The cast enums `#[behavior]` writes (see `tagged`).
struct Direct;

impl<T: DeserializeOwned> DecodeCast<T> for Serde {
    #[inline]
    fn decode(bytes: &[u8]) -> Result<T, postcard::Error> {
        postcard::from_bytes(bytes)
    }
}

impl<T: Tagged> DecodeCast<T> for Direct {
    #[inline]
    fn decode(bytes: &[u8]) -> Result<T, postcard::Error> {
        T::decode_tagged(bytes)
    }
}

impl<B: GenServer> Clone for Codec<B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: GenServer> Copy for Codec<B> {}

fn encode<T: Serialize>(value: &T, out: &mut Vec<u8>) -> Result<(), postcard::Error> {
    wire::append(value, out)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// The codec of a behaviour whose messages are serde types.
#[doc(hidden)]
pub fn codec<B>() -> Codec<B>
where
    B: GenServer + BehaviorName,
    B::Call: Serialize + DeserializeOwned,
    B::Reply: Serialize + DeserializeOwned,
    B::Cast: Serialize + DeserializeOwned,
    B::Info: Serialize + DeserializeOwned,
    B::Args: Serialize + DeserializeOwned,
{
    Codec {
        name: B::NAME,
        hash: const { crate::__private::tag(B::NAME, "") },
        encode_call: encode_within::<B::Call>,
        decode_call: decode::<B::Call>,
        encode_reply: encode_within::<B::Reply>,
        decode_reply: decode::<B::Reply>,
        encode_cast: encode_within::<B::Cast>,
        decode_cast: decode::<B::Cast>,
        handle_cast: handle_cast::<B, Serde>,
        encode_info: encode_within::<B::Info>,
        decode_info: decode::<B::Info>,
        encode_args: encode::<B::Args>,
        decode_args: decode::<B::Args>,
    }
}

fn encode_tagged<T: Tagged>(
    value: &T,
    out: &mut Vec<u8>,
    most: usize,
) -> Result<(), postcard::Error> {
    value.encode_tagged(out, most)
}

/// The codec of a behaviour written with `#[behavior]`: its calls, replies and casts are
/// the enums it generates, encoded without serde's generic path (see `tagged`); its infos
/// and init arguments are serde types.
#[doc(hidden)]
pub fn tagged_codec<B>() -> Codec<B>
where
    B: GenServer + BehaviorName,
    B::Call: Tagged,
    B::Reply: Tagged,
    B::Cast: Tagged,
    B::Info: Serialize + DeserializeOwned,
    B::Args: Serialize + DeserializeOwned,
{
    Codec {
        name: B::NAME,
        hash: const { crate::__private::tag(B::NAME, "") },
        encode_call: encode_tagged::<B::Call>,
        decode_call: B::Call::decode_tagged,
        encode_reply: encode_tagged::<B::Reply>,
        decode_reply: B::Reply::decode_tagged,
        encode_cast: encode_tagged::<B::Cast>,
        decode_cast: B::Cast::decode_tagged,
        handle_cast: handle_cast::<B, Direct>,
        encode_info: encode_within::<B::Info>,
        decode_info: decode::<B::Info>,
        encode_args: encode::<B::Args>,
        decode_args: decode::<B::Args>,
    }
}
