use super::*;
use std::sync::Arc;
use std::task::Wake;

/// Deadlines registered in the calling thread's table.
fn registered_here() -> usize {
    WATCH.with(|watch| watch.borrow().registered)
}

#[test]
fn the_sweeper_frees_an_expired_slot_and_its_deadline_reads_expired() {
    let waker = Waker::from(Arc::new(Count));
    let mut watch = Watch::new();
    let (index, generation) = watch.register(Duration::from_millis(10), &waker);
    let start = Instant::now();
    assert!(watch.expire(start).is_empty(), "the clock starts");
    assert_eq!(watch.registered, 1);
    let woken = watch.expire(start + Duration::from_millis(10));
    assert_eq!(woken.len(), 1, "its call is woken");
    assert_eq!(watch.registered, 0, "and its slot freed");
    assert_eq!(watch.free, vec![index]);
    // The owner's release comes too late and touches nothing.
    watch.release(index, generation);
    assert_eq!((watch.registered, watch.free.len()), (0, 1));
}

#[test]
fn a_deadline_finished_on_another_thread_frees_its_slot_at_its_expiry() {
    let node = crate::Node::builder().threads(1).build();
    let timeout = Duration::from_millis(50);
    // Registered on the node's one scheduler thread...
    let (mut deadline, registered) = node.block_on(node.spawn_task(async move {
        let mut deadline = Deadline::after(timeout);
        let first = futures_lite::future::poll_once(poll_fn(|cx| deadline.poll_expired(cx)));
        assert_eq!(first.await, None);
        (deadline, registered_here())
    }));
    assert_eq!(registered, 1);
    // ...then polled and dropped on this thread, which cannot reach that table.
    let polled = futures_lite::future::block_on(futures_lite::future::poll_once(poll_fn(|cx| {
        deadline.poll_expired(cx)
    })));
    assert_eq!(polled, None);
    drop(deadline);
    // The scheduler thread's table empties (and its sweeper sleeps) once the
    // deadline has passed.
    let start = Instant::now();
    while node.block_on(node.spawn_task(async { registered_here() })) > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the orphaned slot was never freed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    node.shutdown();
}

struct Count;
impl Wake for Count {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn a_freed_slot_keeps_its_waker_for_the_next_call_until_the_thread_goes_quiet() {
    let task = Arc::new(Count);
    let waker = Waker::from(task.clone());
    let mut watch = Watch::new();
    let (index, generation) = watch.register(Duration::from_secs(5), &waker);
    assert_eq!(Arc::strong_count(&task), 3, "the slot holds a clone");
    watch.release(index, generation);
    assert_eq!(Arc::strong_count(&task), 3, "kept while free");
    let (again, generation) = watch.register(Duration::from_secs(5), &waker);
    assert_eq!(again, index, "the same slot comes back");
    assert_eq!(
        Arc::strong_count(&task),
        3,
        "and its waker is not cloned again"
    );
    watch.forget_wakers();
    assert_eq!(Arc::strong_count(&task), 3, "a slot in use keeps its waker");
    watch.release(again, generation);
    watch.forget_wakers();
    assert_eq!(Arc::strong_count(&task), 2, "forgotten once free");
    // Freed after others were forgotten: forgotten the next time, the others untouched.
    let (first, first_generation) = watch.register(Duration::from_secs(5), &waker);
    let other_task = Arc::new(Count);
    let other = Waker::from(other_task.clone());
    let (second, second_generation) = watch.register(Duration::from_secs(5), &other);
    watch.release(first, first_generation);
    watch.release(second, second_generation);
    assert_eq!(Arc::strong_count(&task), 3);
    assert_eq!(Arc::strong_count(&other_task), 3);
    watch.forget_wakers();
    assert_eq!(Arc::strong_count(&task), 2);
    assert_eq!(Arc::strong_count(&other_task), 2);
    // The sweeper forgets them too.
    let (index, generation) = watch.register(Duration::from_secs(5), &waker);
    watch.register(Duration::from_secs(5), &other);
    watch.release(index, generation);
    assert_eq!(Arc::strong_count(&task), 3);
    assert!(watch.expire(Instant::now()).is_empty());
    assert_eq!(Arc::strong_count(&task), 2);
}

#[test]
fn a_deadline_starts_its_clock_when_the_clock_is_next_read() {
    let waker = Waker::from(Arc::new(Count));
    let mut watch = Watch::new();
    let timeout = Duration::from_millis(10);
    let start = Instant::now();
    watch.register(timeout, &waker);
    let read = start + Duration::from_millis(3);
    watch.start_clocks(read);
    assert_eq!(watch.due, Some(read + timeout));
    assert!(
        watch.expire(start + timeout).is_empty(),
        "not before its timeout from when the clock was read"
    );
    assert_eq!(watch.expire(read + timeout).len(), 1);
    assert_eq!((watch.registered, watch.due), (0, None));
}

#[test]
fn calls_answered_in_time_set_the_sweepers_timer_once() {
    let sweeper_task = Arc::new(Count);
    let waker = Waker::from(Arc::new(Count));
    let mut watch = Watch::new();
    watch.sweeper = Some(Waker::from(sweeper_task.clone()));
    let timeout = Duration::from_secs(5);
    let start = Instant::now();
    let mut sweeper_woken = 0;
    for call in 0..1_000u32 {
        let (index, generation) = watch.register(timeout, &waker);
        let now = start + Duration::from_micros(u64::from(call) * 80);
        if watch.start_clocks(now).is_some() {
            sweeper_woken += 1;
            // The sweeper sets its timer to the earliest expiry.
            watch.armed = watch.due;
        }
        watch.release(index, generation);
    }
    assert_eq!(sweeper_woken, 1, "only the first call needs the timer set");
    // A shorter timeout does need it set earlier.
    watch.register(Duration::from_millis(1), &waker);
    assert!(watch
        .start_clocks(start + Duration::from_millis(100))
        .is_some());
}
