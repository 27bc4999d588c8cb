//! Group members across a cut link.

use super::*;

/// Group members of c leave a's view while the a–c link is cut, stay in b's; members that
/// join on either end meanwhile reach b and their own side; after the heal every node
/// sees every member, and later changes still reach everyone.
#[test]
fn group_members_beyond_a_cut_link_come_back_on_heal() {
    run_blocking(async {
        let nodes = start_cluster(3).await;
        let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
        let on_a = counter(a, "a").await;
        let on_b = counter(b, "b").await;
        let on_c = counter(c, "c").await;
        for (node, member) in [(a, &on_a), (b, &on_b), (c, &on_c)] {
            assert_eq!(node.join_group("g", member.pid()).await, Ok(true));
        }
        let sorted = |pids: &[&ServerRef<Counter>]| {
            let mut pids: Vec<Pid> = pids.iter().map(|p| p.pid().clone()).collect();
            pids.sort();
            pids
        };
        let sees = |expected: [Vec<Pid>; 3]| {
            let nodes = nodes.clone();
            async move {
                let what = format!("the nodes to see members {expected:?}");
                eventually(&what, || {
                    nodes
                        .iter()
                        .zip(&expected)
                        .all(|(node, members)| node.group_members("g") == *members)
                })
                .await
            }
        };
        let all = sorted(&[&on_a, &on_b, &on_c]);
        sees([all.clone(), all.clone(), all.clone()]).await;

        cut(&nodes, true).await;
        let (a_side, c_side) = (sorted(&[&on_a, &on_b]), sorted(&[&on_b, &on_c]));
        sees([a_side, all.clone(), c_side]).await;

        // Joins and leaves at both ends during the cut.
        let a2 = counter(a, "a2").await;
        let c2 = counter(c, "c2").await;
        assert_eq!(a.join_group("g", a2.pid()).await, Ok(true));
        assert_eq!(c.join_group("g", c2.pid()).await, Ok(true));
        assert_eq!(c.leave_group("g", on_c.pid()).await, Ok(true));
        let a_side = sorted(&[&on_a, &a2, &on_b]);
        let c_side = sorted(&[&on_b, &c2]);
        let at_b = sorted(&[&on_a, &a2, &on_b, &c2]);
        sees([a_side, at_b.clone(), c_side]).await;

        cut(&nodes, false).await;
        sees([at_b.clone(), at_b.clone(), at_b]).await;
        a2.stop(ExitReason::Normal).await.unwrap();
        let rest = sorted(&[&on_a, &on_b, &c2]);
        sees([rest.clone(), rest.clone(), rest]).await;
        shutdown_all(nodes);
    });
}
