//! Subscription lookup: the trie in caller memory ([`zmtp_core::socket::trie::Trie`]) against
//! a naive linear scan, over 10 000 topics.
//!
//! Topics are made like libzmq's `perf/benchmark_radix_tree.cpp`: 10 000 keys of 20
//! characters drawn from `a-z0-9` (a fixed-seed xorshift instead of `rand()`). Each lookup
//! asks "does some topic prefix this first frame?" (RFC 29 matching):
//!
//! - `match`: a topic followed by 8 more bytes (a message on that topic): the scan stops at
//!   the matching topic, half way through the list on average.
//! - `miss`: 28 random characters that no topic prefixes: the scan reads every topic.
//!
//! Cases, one lookup per iteration (cycling through 4096 prepared keys, so the time is
//! ns/lookup):
//!
//! - `trie-counted/*`: [`Trie::matches`] on a counted trie (SUB, XSUB).
//! - `trie-sets64/*`: [`Trie::match_members`] on a member-set trie with 64 members, each topic
//!   held by one (PUB, XPUB fan-out: the bitmask of peers to send to).
//! - `linear/*`: `topics.iter().any(|t| key.starts_with(t))` over a `Vec<Vec<u8>>`.
//!
//! Run with `cargo bench -p zmtp-core --bench subscriptions`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use zmtp_core::socket::trie::{self, Trie};

const TOPICS: usize = 10_000;
const KEY_LEN: usize = 20;
const QUERIES: usize = 4096;
const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn string(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| CHARS[(self.next() % CHARS.len() as u64) as usize])
            .collect()
    }
}

fn bench(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let topics: Vec<Vec<u8>> = (0..TOPICS).map(|_| rng.string(KEY_LEN)).collect();
    let hits: Vec<Vec<u8>> = (0..QUERIES)
        .map(|_| {
            let mut k = topics[(rng.next() % TOPICS as u64) as usize].clone();
            k.extend(rng.string(8));
            k
        })
        .collect();
    let misses: Vec<Vec<u8>> = (0..QUERIES)
        .map(|_| loop {
            let k = rng.string(KEY_LEN + 8);
            if !topics.iter().any(|t| k.starts_with(t)) {
                break k;
            }
        })
        .collect();

    let nodes = 1 + TOPICS * (1 + KEY_LEN.div_ceil(trie::LABEL_LEN));
    let mut cmem = vec![0u8; trie::counted_memory(nodes)];
    let mut counted = Trie::counted(&mut cmem);
    let mut smem = vec![0u8; trie::sets_memory(64, nodes)];
    let mut sets = Trie::sets(&mut smem, 64);
    for (i, t) in topics.iter().enumerate() {
        counted.add(t).unwrap();
        sets.insert_member(t, i % 64).unwrap();
    }
    eprintln!(
        "{} topics: counted trie {} nodes x {} B = {} KiB; sets64 trie {} nodes x {} B = {} KiB; \
         the topics themselves {} KiB",
        TOPICS,
        counted.nodes_used(),
        trie::NODE_HEADER + 4,
        counted.nodes_used() * (trie::NODE_HEADER + 4) / 1024,
        sets.nodes_used(),
        trie::NODE_HEADER + 8,
        sets.nodes_used() * (trie::NODE_HEADER + 8) / 1024,
        TOPICS * KEY_LEN / 1024,
    );
    // Sanity: all three agree.
    for k in hits.iter().chain(misses.iter()) {
        let naive = topics.iter().any(|t| k.starts_with(t));
        assert_eq!(counted.matches(k), naive);
        assert_eq!(sets.match_members(k).iter().any(|&b| b != 0), naive);
    }

    let mut g = c.benchmark_group("subscriptions-10k");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.sample_size(20);
    for (name, keys) in [("match", &hits), ("miss", &misses)] {
        let mut i = 0usize;
        g.bench_function(format!("trie-counted/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % QUERIES;
                black_box(counted.matches(black_box(&keys[i])))
            })
        });
        let mut i = 0usize;
        g.bench_function(format!("trie-sets64/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % QUERIES;
                black_box(sets.match_members(black_box(&keys[i]))[0])
            })
        });
        let mut i = 0usize;
        g.bench_function(format!("linear/{name}"), |b| {
            b.iter(|| {
                i = (i + 1) % QUERIES;
                let k = black_box(&keys[i]);
                black_box(topics.iter().any(|t| k.starts_with(t)))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
