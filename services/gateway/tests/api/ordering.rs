//! The ordering invariants: gapless seqs in order without duplicates, with
//! concurrent senders; and a gapless join while others send.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{send_until_stopped, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_every_session_sees_one_gapless_order() {
    const SENDERS: usize = 4;
    const PER_SENDER: usize = 50;
    const TOTAL: u64 = (SENDERS * PER_SENDER) as u64;
    let app = spawn_app(|s| s.gateway.limits.messages_per_second = 1_000);
    let mut observers = Vec::new();
    for i in 0..3 {
        let mut c = app.client(&format!("observer{i}")).await;
        c.join("race").await;
        observers.push(c);
    }
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let mut c = app.client(&format!("sender{i}")).await;
        c.join("race").await;
        senders.push(c);
    }
    let observing: Vec<_> =
        observers.into_iter().map(|mut c| tokio::spawn(async move { c.message_seqs(TOTAL as usize).await })).collect();
    let sending: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for n in 0..PER_SENDER {
                    c.send(json!({"type": "send", "id": n, "room": "race", "text": format!("{i}-{n}")})).await;
                }
                while acked.len() < PER_SENDER {
                    let frame = c.recv().await;
                    if frame["type"] == "ack" {
                        acked.push(frame["seq"].as_u64().unwrap());
                    }
                }
                acked
            })
        })
        .collect();
    let mut all_acked = Vec::new();
    for task in sending {
        let acked = task.await.unwrap();
        assert!(acked.windows(2).all(|w| w[0] < w[1]), "one sender's messages keep its order");
        all_acked.extend(acked);
    }
    all_acked.sort_unstable();
    assert_eq!(all_acked, (1..=TOTAL).collect::<Vec<_>>(), "every send got its own seq, no gaps");
    for task in observing {
        assert_eq!(task.await.unwrap(), (1..=TOTAL).collect::<Vec<_>>());
    }
    let mut reader = app.client("reader").await;
    let page = reader.request(json!({"type": "history", "room": "race", "limit": 1000})).await;
    let stored: Vec<u64> = page["messages"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(stored, (1..=TOTAL).collect::<Vec<_>>(), "history is in seq order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_while_others_send_is_gapless() {
    let app = spawn_app(|s| s.gateway.limits.messages_per_second = 1_000_000);
    let mut sender = app.client("sender").await;
    sender.join("busy").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sending = send_until_stopped(sender, "busy", 20, stop.clone());
    for round in 0..5 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut joiner = app.client(&format!("joiner{round}")).await;
        let joined = joiner.request(json!({"type": "join", "room": "busy", "limit": 1000})).await;
        let history: Vec<u64> =
            joined["history"].as_array().unwrap().iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        let last = joined["seq"].as_u64().unwrap();
        assert_eq!(history.last().copied().unwrap_or(0), last, "history ends at the joined seq");
        let live: Vec<u64> = (last + 1..=last + 30).collect();
        assert_eq!(joiner.message_seqs(30).await, live, "live continues exactly where history ended (round {round})");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(sending.await.unwrap() > 150);
}
