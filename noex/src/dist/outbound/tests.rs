//! Tests of the outbound queue: lanes, fragments, the window, direct writes.

use super::batch::Taken;
use super::*;
use crate::dist::wire::FRAGMENT_WINDOW;
use crate::Bytes;

/// A frame holding a cast with a payload of `len` bytes of `fill`.
fn frame(len: usize, fill: u8) -> Vec<u8> {
    let cast = WireMessage::Cast {
        to: wire::Address::Name("x".into()),
        behavior: 0,
    };
    let mut out = Vec::new();
    wire::encode_frame_with(&cast, &mut out, |out| {
        out.resize(out.len() + len, fill);
        Ok(())
    })
    .unwrap();
    out
}

/// Splits a batch into frame bodies.
fn frames(mut batch: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !batch.is_empty() {
        let len = u32::from_be_bytes(batch[..4].try_into().unwrap()) as usize;
        out.push(batch[4..4 + len].to_vec());
        batch = &batch[4 + len..];
    }
    out
}

fn is_fragment(body: &[u8]) -> bool {
    matches!(wire::decode(body), Ok((WireMessage::Fragment { .. }, _)))
}

/// Takes a batch as the writer does, and reports it written.
fn take(queue: &Outbound) -> Vec<Vec<u8>> {
    let mut batch = Frame::default();
    queue.take_batch(&mut batch);
    queue.written();
    frames(&batch.into_vec())
}

#[test]
fn small_messages_pass_a_large_one_of_another_sender() {
    let queue = Outbound::new(usize::MAX, Default::default());
    queue.try_push(&mut frame(3 * FRAGMENT_SIZE, 1), 1).unwrap();
    let small = frame(10, 2);
    queue.try_push(&mut small.clone(), 2).unwrap();
    let sent = take(&queue);
    // The small message, then fragments.
    assert_eq!(sent[0], small[4..]);
    assert!(sent[1..].iter().all(|body| is_fragment(body)));
}

#[test]
fn a_senders_small_message_waits_behind_its_own_large_one() {
    let queue = Outbound::new(usize::MAX, Default::default());
    let large = frame(2 * FRAGMENT_SIZE, 1);
    queue.try_push(&mut large.clone(), 1).unwrap();
    let small = frame(10, 2);
    queue.try_push(&mut small.clone(), 1).unwrap();
    let bodies = take(&queue);
    let kinds: Vec<_> = bodies.iter().map(|b| is_fragment(b)).collect();
    assert_eq!(kinds, vec![true, true, true, false]);
    assert_eq!(bodies[3], small[4..]);
    // The fragments' payloads joined are the large frame's body.
    let joined: Vec<u8> = bodies[..3]
        .iter()
        .flat_map(|body| wire::decode(body).unwrap().1.to_vec())
        .collect();
    assert_eq!(joined, large[4..]);
}

#[test]
fn fragments_stop_at_the_window_until_acknowledged() {
    let queue = Outbound::new(usize::MAX, Default::default());
    queue
        .try_push(&mut frame(4 * FRAGMENT_WINDOW, 1), 1)
        .unwrap();
    let mut sent = 0;
    for _ in 0..8 {
        for body in take(&queue) {
            sent += wire::decode(&body).unwrap().1.len();
        }
    }
    assert_eq!(sent, FRAGMENT_WINDOW, "nothing past the window");
    queue.acknowledged(FRAGMENT_SIZE);
    let more: usize = take(&queue)
        .iter()
        .map(|body| wire::decode(body).unwrap().1.len())
        .sum();
    assert_eq!(more, FRAGMENT_SIZE);
}

#[test]
fn acknowledgements_owed_go_out_as_one_per_batch() {
    let queue = Outbound::new(usize::MAX, Default::default());
    for _ in 0..1_000 {
        queue.owe_ack(7);
    }
    let sent = take(&queue);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        wire::decode(&sent[0]).unwrap().0,
        WireMessage::FragmentAck { bytes: 7_000 }
    );
    assert!(take(&queue).is_empty());
}

#[test]
fn a_large_message_does_not_take_the_room_of_small_ones() {
    let queue = Outbound::new(FRAGMENT_SIZE * 2, Default::default());
    queue.try_push(&mut frame(8 * FRAGMENT_SIZE, 1), 1).unwrap();
    assert_eq!(
        queue.try_push(&mut frame(8 * FRAGMENT_SIZE, 1), 1),
        Err(PushError::Full)
    );
    queue.try_push(&mut frame(10, 2), 2).unwrap();
}

#[test]
fn a_full_queue_refuses_until_the_writer_takes() {
    let queue = Outbound::new(100, Default::default());
    queue.try_push(&mut frame(60, 1), 0).unwrap();
    queue.try_push(&mut frame(60, 1), 0).unwrap();
    let mut refused = frame(1, 1);
    assert_eq!(queue.try_push(&mut refused, 0), Err(PushError::Full));
    assert_eq!(refused, frame(1, 1), "a refused frame is left in place");
    take(&queue);
    assert_eq!(queue.queued_bytes(), 0);
    queue.try_push(&mut frame(1, 1), 0).unwrap();
    queue.close();
    assert_eq!(queue.try_push(&mut frame(1, 1), 0), Err(PushError::Closed));
}

#[test]
fn a_message_larger_than_the_peer_takes_is_refused_whatever_the_room() {
    // A peer that takes less than `FRAGMENT_SIZE` takes whatever is sent whole.
    let queue = Outbound::new(usize::MAX, Default::default()).taking(1000);
    // Frame bodies of `FRAGMENT_SIZE` bytes (the most sent whole) and one more.
    let header = frame(0, 0).len() - 4;
    let most = frame(FRAGMENT_SIZE - header, 1);
    queue.try_push(&mut most.clone(), 1).unwrap();
    queue.push_reply(&mut most.clone(), 1).unwrap();
    let mut over = frame(FRAGMENT_SIZE - header + 1, 1);
    let too_large = Err(PushError::TooLarge {
        size: FRAGMENT_SIZE + 1,
        limit: FRAGMENT_SIZE,
    });
    assert_eq!(queue.try_push(&mut over, 1), too_large);
    assert_eq!(queue.push_reply(&mut over, 1), too_large);
    let waited = futures_lite::future::block_on(queue.push_waiting(&mut over, 1));
    assert_eq!(waited, too_large);
    assert_eq!(
        over.len(),
        FRAGMENT_SIZE + 5,
        "a refused frame is left in place"
    );
    assert_eq!(queue.queued_bytes(), 2 * most.len());
}

#[test]
fn a_sender_writes_itself_only_to_an_idle_connection() {
    let queue = Outbound::new(usize::MAX, Default::default());
    assert!(queue.claim_idle(), "idle");
    assert!(!queue.claim_idle(), "claimed once at a time");
    // Queued meanwhile: the writer waits for the claim to end.
    queue.try_push(&mut frame(10, 1), 1).unwrap();
    let mut batch = Frame::default();
    queue.take_batch(&mut batch);
    assert!(batch.own.is_empty(), "the writer stays off the socket");
    queue.release(&[]);
    assert!(!queue.claim_idle(), "something is queued");
    assert_eq!(take(&queue).len(), 1);
    assert!(queue.claim_idle(), "idle again");
    queue.release(&[]);
    // The writer's own batch holds the socket too.
    queue.try_push(&mut frame(10, 1), 1).unwrap();
    queue.take_batch(&mut batch);
    assert!(!queue.claim_idle(), "the writer is writing");
    queue.written();
    assert!(queue.claim_idle());
}

#[test]
fn the_rest_of_a_frame_written_in_part_goes_out_before_anything_else() {
    let queue = Outbound::new(usize::MAX, Default::default());
    let direct = frame(100, 7);
    assert!(queue.claim_idle());
    queue
        .push_control(&WireMessage::FragmentAck { bytes: 1 })
        .unwrap();
    queue.try_push(&mut frame(10, 1), 1).unwrap();
    queue.release(&direct[30..]);
    let mut batch = Frame::default();
    let Taken::Batch(taken) = queue.take_batch(&mut batch) else {
        panic!("closed")
    };
    let rest = &direct[30..];
    assert_eq!(taken.head, rest.len(), "the writer knows what must go out");
    let batch = batch.into_vec();
    assert_eq!(&batch[..rest.len()], rest, "the rest first, whole");
    let mut whole = direct[..30].to_vec();
    whole.extend_from_slice(&batch);
    assert_eq!(
        frames(&whole).len(),
        3,
        "the rest, the control frame, the message"
    );
}

#[test]
fn a_signal_of_no_process_goes_behind_everything_queued() {
    let queue = Outbound::new(usize::MAX, Default::default());
    queue.try_push(&mut frame(2 * FRAGMENT_SIZE, 1), 1).unwrap();
    let signal = frame(10, 2);
    queue.push_signal(&mut signal.clone(), 0).unwrap();
    // What follows it from no process stays behind it.
    let message = frame(10, 3);
    queue.try_push(&mut message.clone(), 0).unwrap();
    // Another process's message does not wait.
    let other = frame(10, 4);
    queue.try_push(&mut other.clone(), 2).unwrap();
    let bodies = take(&queue);
    let kinds: Vec<_> = bodies.iter().map(|b| is_fragment(b)).collect();
    assert_eq!(kinds, vec![false, true, true, true, false, false]);
    assert_eq!(bodies[0], other[4..]);
    assert_eq!(bodies[4], signal[4..]);
    assert_eq!(bodies[5], message[4..]);
}

#[test]
fn an_answer_to_a_signal_counts_as_a_reply_until_sent() {
    let queue = Outbound::new(64, Default::default());
    queue.push_answer(&mut frame(100, 1)).unwrap();
    assert!(queue.holding_back());
    take(&queue);
    assert!(!queue.holding_back());
}

#[test]
fn calls_waiting_for_a_handler_hold_the_reader_back_past_a_number() {
    let queue = Outbound::new(usize::MAX, Default::default());
    for _ in 0..OWED_MOST - 1 {
        queue.owe_reply();
    }
    // Replies all sent: only the number of calls waiting counts.
    assert!(!queue.holding_back());
    queue.owe_reply();
    assert!(queue.holding_back());
    queue.reply_owed_taken();
    assert!(!queue.holding_back());
}

/// Polls a waiting push once: `Some` if it finished.
fn poll<F: std::future::Future + Unpin>(push: &mut F) -> Option<F::Output> {
    futures_lite::future::block_on(futures_lite::future::poll_once(push))
}

/// A queue of `limit` bytes, whose small lane is full.
fn full(limit: usize) -> Outbound {
    let queue = Outbound::new(limit, Default::default());
    while queue.try_push(&mut frame(limit / 2, 0), 0).is_ok() {}
    queue
}

#[test]
fn senders_waiting_for_room_get_it_in_the_order_they_came() {
    let queue = full(100);
    let (mut first, mut second) = (frame(30, 1), frame(30, 2));
    let mut first_push = Box::pin(queue.push_waiting(&mut first, 1));
    assert!(poll(&mut first_push).is_none());
    let mut second_push = Box::pin(queue.push_waiting(&mut second, 2));
    assert!(poll(&mut second_push).is_none());

    take(&queue);
    // Room enough for both, but the second waits for the first.
    assert!(poll(&mut second_push).is_none());
    assert_eq!(poll(&mut first_push), Some(Ok(())));
    assert_eq!(poll(&mut second_push), Some(Ok(())));
    let sent = take(&queue);
    assert_eq!(
        sent,
        [frame(30, 1)[4..].to_vec(), frame(30, 2)[4..].to_vec()]
    );
}

#[test]
fn a_plain_push_never_passes_a_waiting_sender() {
    let queue = full(100);
    let mut waiting = frame(30, 1);
    let mut push = Box::pin(queue.push_waiting(&mut waiting, 1));
    assert!(poll(&mut push).is_none());
    take(&queue);
    assert_eq!(queue.try_push(&mut frame(1, 2), 2), Err(PushError::Full));
    assert_eq!(poll(&mut push), Some(Ok(())));
    queue.try_push(&mut frame(1, 2), 2).unwrap();
}

#[test]
fn a_small_message_waits_behind_a_large_one_only_of_its_own_sender() {
    let queue = Outbound::new(FRAGMENT_SIZE, Default::default());
    queue.try_push(&mut frame(2 * FRAGMENT_SIZE, 0), 0).unwrap();
    let mut large = frame(2 * FRAGMENT_SIZE, 1);
    let mut push = Box::pin(queue.push_waiting(&mut large, 1));
    assert!(poll(&mut push).is_none(), "the large lane is full");
    // Another sender's small message passes; the waiting sender's own does not.
    queue.try_push(&mut frame(10, 2), 2).unwrap();
    assert_eq!(queue.try_push(&mut frame(10, 1), 1), Err(PushError::Full));
    let mut small = frame(10, 1);
    let mut small_push = Box::pin(queue.push_waiting(&mut small, 1));
    assert!(
        poll(&mut small_push).is_none(),
        "behind its sender's large one"
    );
    drop(push);
    assert_eq!(poll(&mut small_push), Some(Ok(())), "the large one gave up");
}

#[test]
fn a_waiting_sender_fails_when_the_queue_closes() {
    let queue = full(100);
    let mut waiting = frame(30, 1);
    let mut push = Box::pin(queue.push_waiting(&mut waiting, 1));
    assert!(poll(&mut push).is_none());
    queue.close();
    assert_eq!(poll(&mut push), Some(Err(PushError::Closed)));
}

#[test]
fn a_place_held_for_an_encoding_keeps_its_senders_order() {
    let queue = Outbound::new(usize::MAX, Default::default());
    let slot = queue.hold(1).unwrap();
    let (before, after) = (frame(10, 2), frame(10, 3));
    queue.try_push(&mut after.clone(), 1).unwrap();
    queue.try_push(&mut before.clone(), 2).unwrap();
    // Another sender's message passes the place; the holder's waits behind it.
    assert_eq!(take(&queue), vec![before[4..].to_vec()]);
    assert!(take(&queue).is_empty(), "nothing passes the place held");
    let large = frame(2 * FRAGMENT_SIZE, 1);
    assert!(queue.fill(slot, Some(Frame::owned(large.clone()))));
    let bodies = take(&queue);
    let kinds: Vec<_> = bodies.iter().map(|b| is_fragment(b)).collect();
    assert_eq!(kinds, vec![true, true, true, false]);
    assert_eq!(bodies[3], after[4..]);
    assert_eq!(queue.queued_bytes(), 0);
}

#[test]
fn a_place_given_up_lets_the_senders_next_messages_go() {
    let queue = Outbound::new(usize::MAX, Default::default());
    let slot = queue.hold(1).unwrap();
    let after = frame(10, 3);
    queue.try_push(&mut after.clone(), 1).unwrap();
    assert!(take(&queue).is_empty());
    assert!(queue.fill(slot, None));
    assert_eq!(take(&queue), vec![after[4..].to_vec()]);
    queue.close();
    assert!(!queue.fill(slot, None), "gone with the connection");
}

#[test]
fn a_place_held_leaves_no_room_for_another_large_message_until_filled() {
    let queue = Outbound::new(4 * FRAGMENT_SIZE, Default::default());
    let slot = queue.hold(1).unwrap();
    assert_eq!(queue.hold(2), Err(PushError::Full));
    let mut large = frame(2 * FRAGMENT_SIZE, 1);
    assert_eq!(queue.try_push(&mut large, 2), Err(PushError::Full));
    queue.try_push(&mut frame(10, 2), 2).unwrap();
    assert!(queue.fill(slot, Some(Frame::owned(frame(2 * FRAGMENT_SIZE, 1)))));
    // Its size known, and under the bound: room again.
    queue.try_push(&mut large, 2).unwrap();
}

/// A waker that records that it was woken.
#[derive(Default)]
struct Flag(std::sync::atomic::AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Flag {
    fn woken(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

#[test]
fn a_waiting_writer_is_woken_by_the_first_frame_and_takes_those_queued_after_it() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let queue = Outbound::new(usize::MAX, Default::default());
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut batch = Frame::default();
    // The writer waits: nothing is queued.
    let mut next = Box::pin(queue.next_batch(&mut batch, || false));
    assert!(next.as_mut().poll(&mut cx).is_pending());
    // The first frame wakes it; the second, queued before it runs, need not.
    queue.try_push(&mut frame(10, 1), 1).unwrap();
    assert!(flag.woken());
    queue.try_push(&mut frame(10, 2), 2).unwrap();
    // Woken, it lets the tasks of its thread go first (it yields once, waking itself):
    // what they queue meanwhile goes out in the same write.
    assert!(next.as_mut().poll(&mut cx).is_pending());
    assert!(flag.woken());
    queue.try_push(&mut frame(10, 3), 1).unwrap();
    assert!(!flag.woken());
    let Poll::Ready(Some(taken)) = next.as_mut().poll(&mut cx) else {
        panic!("the writer takes the frames queued");
    };
    assert_eq!(taken.messages, 3);
    drop(next);
    assert_eq!(frames(&batch.own).len(), 3);
    // A frame queued while the batch is being written is taken once it is written.
    queue.try_push(&mut frame(10, 3), 1).unwrap();
    queue.written();
    batch.own.clear();
    let mut next = Box::pin(queue.next_batch(&mut batch, || false));
    let Poll::Ready(Some(taken)) = next.as_mut().poll(&mut cx) else {
        panic!("the writer takes the frame queued while it wrote");
    };
    assert_eq!(taken.messages, 1);
    // And the next frame after that batch wakes the waiting writer again.
    drop(next);
    queue.written();
    batch.own.clear();
    let mut next = Box::pin(queue.next_batch(&mut batch, || false));
    assert!(next.as_mut().poll(&mut cx).is_pending());
    flag.woken();
    queue.try_push(&mut frame(10, 4), 1).unwrap();
    assert!(flag.woken());
}

#[test]
fn a_held_writer_woken_by_a_frame_takes_nothing_and_frees_no_room() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let queue = Outbound::new(256, Default::default());
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut batch = Frame::default();
    let held = AtomicBool::new(false);
    // The writer waits for frames before the stall begins.
    let mut next = Box::pin(queue.next_batch(&mut batch, || held.load(Ordering::SeqCst)));
    assert!(next.as_mut().poll(&mut cx).is_pending());
    // Stalled; then the queue fills, waking it.
    held.store(true, Ordering::SeqCst);
    let mut queued = 0;
    while queue.try_push(&mut frame(40, 1), 1).is_ok() {
        queued += 1;
    }
    assert!(queued > 0);
    assert!(flag.woken());
    // It yields once, then comes back empty-handed: the frame stays queued...
    assert!(next.as_mut().poll(&mut cx).is_pending());
    let Poll::Ready(Some(taken)) = next.as_mut().poll(&mut cx) else {
        panic!("a held writer returns to wait for the end of the stall");
    };
    assert_eq!(taken.messages, 0);
    drop(next);
    assert!(batch.own.is_empty());
    // ... and the queue stays full.
    assert!(matches!(
        queue.try_push(&mut frame(40, 2), 1),
        Err(PushError::Full)
    ));
    // Once the stall ends, the writer takes it.
    held.store(false, Ordering::SeqCst);
    let mut next = Box::pin(queue.next_batch(&mut batch, || held.load(Ordering::SeqCst)));
    let Poll::Ready(Some(taken)) = next.as_mut().poll(&mut cx) else {
        panic!("the writer takes the frame once the stall ends");
    };
    assert_eq!(taken.messages, queued);
}

#[test]
fn a_frame_that_lends_its_bytes_goes_out_in_fragments_that_lend_them_too() {
    let queue = Outbound::new(usize::MAX, Default::default());
    let whole: Vec<u8> = (0..3 * FRAGMENT_SIZE + 100).map(|i| i as u8).collect();
    let whole = {
        let mut out = Vec::new();
        wire::encode_frame_with(&WireMessage::Goodbye, &mut out, |out| {
            out.extend_from_slice(&whole);
            Ok(())
        })
        .unwrap();
        out
    };
    // The same frame with two runs of it lent.
    let (a, b) = (
        1000..1000 + FRAGMENT_SIZE,
        2 * FRAGMENT_SIZE..2 * FRAGMENT_SIZE + 500,
    );
    let mut own = whole[..a.start].to_vec();
    let first = Bytes::from(whole[a.clone()].to_vec());
    own.extend_from_slice(&whole[a.end..b.start]);
    let second = Bytes::from(whole[b.clone()].to_vec());
    let second_at = own.len();
    own.extend_from_slice(&whole[b.end..]);
    let lent = vec![(a.start, first), (second_at, second)];
    let slot = queue.hold(1).unwrap();
    assert!(queue.fill(slot, Some(Frame { own, lent })));
    let mut batch = Frame::default();
    queue.take_batch(&mut batch);
    queue.written();
    assert!(
        !batch.lent.is_empty(),
        "the fragments lend the buffers, not copies"
    );
    let mut payload = Vec::new();
    for body in frames(&batch.into_vec()) {
        let (message, piece) = wire::decode(&body).unwrap();
        let WireMessage::Fragment { size, .. } = message else {
            panic!("a fragment")
        };
        assert_eq!(size as usize, whole.len() - 4);
        payload.extend_from_slice(piece);
    }
    assert_eq!(payload, whole[4..]);
}
