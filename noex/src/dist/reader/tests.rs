//! Tests of the reader's parts.

use super::follow::{Follow, FOLLOW_AFTER};

#[test]
fn the_reader_follows_only_a_settled_run_of_deliveries_to_another_thread() {
    // A test thread runs no scheduler (its key is 0): any other key is "elsewhere".
    let mut follow = Follow::default();
    for _ in 1..FOLLOW_AFTER {
        follow.note(7);
    }
    assert_eq!(follow.destination(), None, "not yet");
    follow.note(0); // a delivery to nobody in particular does not break the run
    follow.note(7);
    assert_eq!(follow.destination(), Some(7));
    assert_eq!(follow.destination(), None, "moving starts a new count");
    // Deliveries spread over two threads never settle.
    for i in 0..10 * FOLLOW_AFTER {
        follow.note(if i % 2 == 0 { 7 } else { 9 });
    }
    assert_eq!(follow.destination(), None);
}
