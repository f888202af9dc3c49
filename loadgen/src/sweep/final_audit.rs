//! The end of an audited point: ask every node to run anti-entropy, read every key the point
//! wrote back at R = N, and hand what the keys hold to the history checker.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use store::client::{Client, ClientOptions, ClientSecurity, Consistency, Routing};
use store::proto as pb;

use crate::consistency::audit::{Audit, History};
use crate::plan::Point;

/// Rounds of reading back keys that are not readable yet (a restarted node still joining).
const ROUNDS: u32 = 5;
/// Pause between rounds.
const ROUND_GAP: Duration = Duration::from_secs(1);
/// Reads in flight while reading back.
const READS_IN_FLIGHT: usize = 64;

/// Repairs, reads back and audits; unreadable keys are reported, never taken as empty.
pub async fn final_audit(
    endpoints: &[String],
    security: &ClientSecurity,
    history: &History,
    point: &Point,
) -> Audit {
    let keys = history.touched_keys();
    let finals = match Client::connect(
        endpoints,
        ClientOptions {
            timeout: Duration::from_secs(5),
            routing: Routing::TokenAware,
            security: security.clone(),
            ..ClientOptions::default()
        },
    )
    .await
    {
        Ok(client) => read_back(&client, history, &keys, point.replication).await,
        Err(e) => {
            eprintln!("warning: the audit could not reach the cluster: {e}");
            BTreeMap::new()
        }
    };
    history.audit(&finals)
}

async fn read_back(
    client: &Client,
    history: &History,
    keys: &[u64],
    n: u32,
) -> BTreeMap<u64, Vec<Bytes>> {
    // Anti-entropy on every node first, so a replica that missed writes while down or cut
    // off catches up; a node that fails to repair is read around.
    for i in 0..client.node_count() {
        let _ = client
            .admin_of(i, pb::admin_request::Op::Repair(pb::Repair {}))
            .await;
    }
    let all = Consistency {
        r: Some(n),
        ..Consistency::default()
    };
    let mut finals = BTreeMap::new();
    let mut left: Vec<u64> = keys.to_vec();
    for round in 0..ROUNDS {
        if left.is_empty() {
            break;
        }
        if round > 0 {
            tokio::time::sleep(ROUND_GAP).await;
        }
        let results: Vec<(u64, Option<Vec<Bytes>>)> = futures_util::stream::iter(left.clone())
            .map(|k| {
                let key = history.key_bytes(k);
                async move {
                    let got = client.get(&key, &all).await.ok().map(|r| {
                        r.versions
                            .into_iter()
                            .filter(|v| !v.tombstone)
                            .map(|v| v.value)
                            .collect()
                    });
                    (k, got)
                }
            })
            .buffer_unordered(READS_IN_FLIGHT)
            .collect()
            .await;
        left.clear();
        for (k, got) in results {
            match got {
                Some(values) => {
                    finals.insert(k, values);
                }
                None => left.push(k),
            }
        }
    }
    finals
}

/// One line on the terminal: the audit's verdict.
pub fn print_audit_line(a: &Audit) {
    if a.passed() {
        eprintln!(
            "  audit: {} acknowledged writes, 0 lost ({} present, {} superseded); \
             last-writer-wins would have lost {}",
            a.acked_puts + a.acked_deletes,
            a.present,
            a.superseded,
            a.lww_would_lose
        );
    } else {
        eprintln!(
            "  AUDIT FAILED: {} lost, {} resurrected, {} keys unreadable, {} writes not \
             recorded{}",
            a.lost_writes,
            a.resurrected,
            a.keys_unreadable,
            a.writes_not_recorded,
            a.violations
                .first()
                .map(|v| format!("; first: {v}"))
                .unwrap_or_default()
        );
    }
}
