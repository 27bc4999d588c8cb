use super::*;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::Wake;

/// A waker that counts its wake-ups.
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn counter() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count(AtomicUsize::new(0)));
    (count.clone(), Waker::from(count))
}

#[test]
fn a_value_sent_before_the_poll_is_ready_at_once() {
    let (_, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    let (tx, mut rx) = slot::<String>();
    tx.send("reply".to_owned());
    assert_eq!(
        rx.poll_reply(&mut cx),
        Poll::Ready(Some("reply".to_owned()))
    );
}

#[test]
fn a_waiting_receiver_is_woken_once_and_gets_the_value() {
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    let (tx, mut rx) = slot::<u64>();
    assert_eq!(rx.poll_reply(&mut cx), Poll::Pending);
    assert_eq!(
        rx.poll_reply(&mut cx),
        Poll::Pending,
        "polled again with the same waker"
    );
    tx.send(7);
    assert_eq!(count.0.load(SeqCst), 1);
    assert_eq!(rx.poll_reply(&mut cx), Poll::Ready(Some(7)));
}

#[test]
fn a_new_waker_replaces_the_registered_one() {
    let (first, waker1) = counter();
    let (second, waker2) = counter();
    let (tx, mut rx) = slot::<u64>();
    assert_eq!(
        rx.poll_reply(&mut Context::from_waker(&waker1)),
        Poll::Pending
    );
    assert_eq!(
        rx.poll_reply(&mut Context::from_waker(&waker2)),
        Poll::Pending
    );
    tx.send(1);
    assert_eq!((first.0.load(SeqCst), second.0.load(SeqCst)), (0, 1));
}

#[test]
fn a_sender_dropped_without_a_value_closes_the_slot() {
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    let (tx, mut rx) = slot::<u64>();
    assert_eq!(rx.poll_reply(&mut cx), Poll::Pending);
    drop(tx);
    assert_eq!(count.0.load(SeqCst), 1);
    assert_eq!(rx.poll_reply(&mut cx), Poll::Ready(None));
}

#[test]
fn a_value_nobody_reads_is_dropped_with_the_slot() {
    let value = Arc::new(());
    let (tx, rx) = slot::<Arc<()>>();
    drop(rx);
    tx.send(value.clone());
    assert_eq!(Arc::strong_count(&value), 1, "freed with the slot");

    let (tx, mut rx) = slot::<Arc<()>>();
    tx.send(value.clone());
    drop(rx.poll_reply(&mut Context::from_waker(&counter().1)));
    drop(rx);
    assert_eq!(
        Arc::strong_count(&value),
        1,
        "the taken value is the receiver's"
    );
}

#[test]
fn a_finished_slot_is_reused_with_its_waker() {
    let (count, waker) = counter();
    let mut cx = Context::from_waker(&waker);
    let (tx, mut rx) = slot::<u32>();
    let first = rx.inner;
    assert_eq!(rx.poll_reply(&mut cx), Poll::Pending);
    tx.send(1);
    assert_eq!(rx.poll_reply(&mut cx), Poll::Ready(Some(1)));
    rx.recycle();

    let (tx, mut rx) = slot::<u32>();
    assert_eq!(rx.inner, first, "the spare came back");
    assert_eq!(rx.poll_reply(&mut cx), Poll::Pending);
    tx.send(2);
    assert_eq!(count.0.load(SeqCst), 2);
    assert_eq!(rx.poll_reply(&mut cx), Poll::Ready(Some(2)));
    rx.recycle();
}

#[test]
fn a_slot_the_sender_still_holds_is_not_reused() {
    let (tx, mut rx) = slot::<u8>();
    let first = rx.inner;
    // One more hold, as if the sender were still finishing; let go of at the end.
    rx.shared().holders.fetch_add(1, SeqCst);
    tx.send(3);
    assert_eq!(
        rx.poll_reply(&mut Context::from_waker(&counter().1)),
        Poll::Ready(Some(3))
    );
    rx.recycle();
    let (_tx, rx) = slot::<u8>();
    assert_ne!(rx.inner, first);
    // SAFETY: the hold taken above, let go of once.
    unsafe { Inner::let_go(first) };
}

#[test]
fn spares_of_several_types_are_kept_apart() {
    fn finish<T: Send + 'static + PartialEq + fmt::Debug>(value: T) -> *const () {
        let (tx, mut rx) = slot::<T>();
        let at = rx.inner.as_ptr().cast::<()>().cast_const();
        tx.send(value);
        assert!(rx
            .poll_reply(&mut Context::from_waker(&counter().1))
            .is_ready());
        rx.recycle();
        at
    }
    let a = finish(1u8);
    let b = finish(String::from("b"));
    assert_eq!(finish(2u8), a);
    assert_eq!(finish(String::from("c")), b);
    for _ in 0..8 {
        finish(1u16);
        finish(1u32);
        finish(1u64);
        finish(1i8);
    }
}

/// Polls `rx` with `waker` until it is ready, yielding the thread between polls.
fn poll_until_ready<T>(rx: &mut Receiver<T>, waker: &Waker) -> Option<T> {
    let mut cx = Context::from_waker(waker);
    loop {
        if let Poll::Ready(value) = rx.poll_reply(&mut cx) {
            return value;
        }
        std::thread::yield_now();
    }
}

#[test]
fn sends_from_another_thread_race_the_polls() {
    let (count, waker) = counter();
    let rounds = if cfg!(miri) { 50 } else { 2_000 };
    for round in 0..rounds {
        let (tx, mut rx) = slot::<Vec<u64>>();
        let sender = std::thread::spawn(move || tx.send(vec![round]));
        let value = poll_until_ready(&mut rx, &waker);
        assert_eq!(value, Some(vec![round]));
        sender.join().unwrap();
        rx.recycle();
    }
    assert!(count.0.load(SeqCst) <= rounds as usize);
}

#[test]
fn a_slot_recycled_while_its_sender_finishes_is_reused_or_freed_safely() {
    let (_, waker) = counter();
    let rounds = if cfg!(miri) { 50 } else { 2_000 };
    let mut senders = Vec::new();
    for round in 0..rounds {
        let (tx, mut rx) = slot::<Vec<u64>>();
        senders.push(std::thread::spawn(move || tx.send(vec![round])));
        let value = poll_until_ready(&mut rx, &waker);
        assert_eq!(value, Some(vec![round]));
        // The sender may still be waking us: the slot is kept only once it let go.
        rx.recycle();
    }
    for sender in senders {
        sender.join().unwrap();
    }
}

#[test]
fn a_close_from_another_thread_races_a_waker_change() {
    let rounds = if cfg!(miri) { 50 } else { 2_000 };
    for _ in 0..rounds {
        let (_, waker1) = counter();
        let (_, waker2) = counter();
        let (tx, mut rx) = slot::<u64>();
        assert!(rx
            .poll_reply(&mut Context::from_waker(&waker1))
            .is_pending());
        let sender = std::thread::spawn(move || drop(tx));
        let mut flip = false;
        let value = loop {
            flip = !flip;
            let waker = if flip { &waker2 } else { &waker1 };
            if let Poll::Ready(value) = rx.poll_reply(&mut Context::from_waker(waker)) {
                break value;
            }
            std::thread::yield_now();
        };
        assert_eq!(value, None);
        sender.join().unwrap();
    }
}
