use std::collections::HashMap;

use super::*;

/// `score("customer-1", "n1")`, pinned: changing the hash would move every key.
const PINNED: u64 = 7_230_644_169_623_629_076;

fn c(node: &str, free: u32) -> Candidate {
    Candidate {
        node: node.into(),
        free_slots: free,
    }
}

#[test]
fn local_runs_here_and_a_draining_node_sends_work_to_a_peer_or_to_anyone() {
    let me = c("a", 1);
    let others = [c("b", 5)];
    assert_eq!(
        choose(Policy::Local, Some(&me), &others, None, 0),
        Choice::Here
    );
    assert_eq!(
        choose(Policy::Local, None, &others, None, 0),
        Choice::There("b".into())
    );
    assert_eq!(choose(Policy::Local, None, &[], None, 0), Choice::Anywhere);
}

#[test]
fn round_robin_takes_every_healthy_node_in_turn() {
    let me = c("b", 0);
    let others = [c("a", 0), c("c", 0)];
    let got: Vec<Choice> = (0..6)
        .map(|t| choose(Policy::RoundRobin, Some(&me), &others, None, t))
        .collect();
    let there = |n: &str| Choice::There(n.into());
    assert_eq!(
        got,
        [
            there("a"),
            Choice::Here,
            there("c"),
            there("a"),
            Choice::Here,
            there("c")
        ]
    );
}

#[test]
fn least_loaded_goes_to_the_most_free_workers() {
    let me = c("a", 2);
    let others = [c("b", 9), c("c", 4)];
    for t in 0..4 {
        assert_eq!(
            choose(Policy::LeastLoaded, Some(&me), &others, None, t),
            Choice::There("b".into())
        );
    }
    let me = c("a", 10);
    assert_eq!(
        choose(Policy::LeastLoaded, Some(&me), &others, None, 0),
        Choice::Here
    );
}

#[test]
fn consistent_hash_keeps_a_key_on_its_node_and_moves_only_a_leaving_nodes_keys() {
    let nodes = ["n1", "n2", "n3"];
    let owner = |key: &str, up: &[&str]| -> String {
        let cands: Vec<Candidate> = up.iter().map(|n| c(n, 0)).collect();
        match choose(
            Policy::ConsistentHash,
            Some(&cands[0]),
            &cands[1..],
            Some(key),
            0,
        ) {
            Choice::Here => cands[0].node.clone(),
            Choice::There(n) => n,
            Choice::Anywhere => unreachable!(),
        }
    };
    let keys: Vec<String> = (0..3000).map(|i| format!("customer-{i}")).collect();
    let before: HashMap<&str, String> = keys
        .iter()
        .map(|k| (k.as_str(), owner(k, &nodes)))
        .collect();
    // Whichever node asks, a key goes to the same node.
    for k in keys.iter().take(200) {
        assert_eq!(owner(k, &["n2", "n1", "n3"]), before[k.as_str()]);
        assert_eq!(owner(k, &["n3", "n2", "n1"]), before[k.as_str()]);
    }
    // Spread: each node gets a fair share.
    for n in nodes {
        let share = before.values().filter(|o| *o == n).count();
        assert!((700..1300).contains(&share), "{n} got {share} of 3000 keys");
    }
    // n2 leaves: its keys move, no other key does.
    let after: HashMap<&str, String> = keys
        .iter()
        .map(|k| (k.as_str(), owner(k, &["n1", "n3"])))
        .collect();
    for k in &keys {
        if before[k.as_str()] != "n2" {
            assert_eq!(after[k.as_str()], before[k.as_str()], "{k} moved");
        }
    }
}

#[test]
fn the_rendezvous_score_is_fixed_for_all_builds() {
    // Nodes of different builds must agree: the score is part of the protocol.
    assert_eq!(score("k", "n1"), score("k", "n1"));
    assert_ne!(score("k", "n1"), score("k", "n2"));
    assert_eq!(score("customer-1", "n1"), PINNED);
}
