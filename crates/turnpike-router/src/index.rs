//! The candidate index: only matchers whose host and path can match a request are tested.
//!
//! Matchers are stored in match order, so a matcher's position is its rank: lower positions
//! win. Each host bucket (exact host, wildcard suffix, wildcard prefix, and "any host")
//! keeps three rank-sorted candidate lists: prefix paths in a byte trie (walking the request
//! path yields the lists of every prefix it starts with), regex paths behind one `RegexSet`,
//! and matchers without paths. A request merges the lists of its buckets in rank order and
//! tests candidates until one matches fully — the same result as testing every matcher in
//! order, at the cost of the few that share the request's host and path.

use std::collections::HashMap;

use regex::RegexSet;

use crate::matcher::{Ctx, Hit, Matcher, PathPat, Wild};

#[derive(Debug, Default)]
struct TrieNode {
    /// Children by byte, sorted.
    children: Vec<(u8, u32)>,
    /// Matchers whose prefix ends here, by rank.
    ends: Vec<u32>,
}

#[derive(Debug, Default)]
struct Bucket {
    trie: Vec<TrieNode>,
    regex: Option<(RegexSet, Vec<u32>)>,
    no_path: Vec<u32>,
}

impl Bucket {
    fn new() -> Self {
        Self { trie: vec![TrieNode::default()], regex: None, no_path: Vec::new() }
    }

    fn insert_prefix(&mut self, prefix: &str, m: u32) {
        let mut node = 0usize;
        for &b in prefix.as_bytes() {
            let next = match self.trie[node].children.binary_search_by_key(&b, |(k, _)| *k) {
                Ok(i) => self.trie[node].children[i].1 as usize,
                Err(i) => {
                    let id = self.trie.len() as u32;
                    self.trie.push(TrieNode::default());
                    self.trie[node].children.insert(i, (b, id));
                    id as usize
                }
            };
            node = next;
        }
        let ends = &mut self.trie[node].ends;
        if ends.last() != Some(&m) {
            ends.push(m);
        }
    }

    /// Adds the candidate lists of this bucket for `path`.
    fn candidates<'a>(&'a self, path: &str, out: &mut Vec<List<'a>>) {
        let mut node = 0usize;
        if !self.trie[0].ends.is_empty() {
            out.push(List::Borrowed(&self.trie[0].ends));
        }
        for &b in path.as_bytes() {
            match self.trie[node].children.binary_search_by_key(&b, |(k, _)| *k) {
                Ok(i) => node = self.trie[node].children[i].1 as usize,
                Err(_) => break,
            }
            if !self.trie[node].ends.is_empty() {
                out.push(List::Borrowed(&self.trie[node].ends));
            }
        }
        if let Some((set, owners)) = &self.regex {
            let hits: Vec<u32> = set.matches(path).iter().map(|i| owners[i]).collect();
            if !hits.is_empty() {
                out.push(List::Owned(hits));
            }
        }
        if !self.no_path.is_empty() {
            out.push(List::Borrowed(&self.no_path));
        }
    }
}

/// A rank-sorted candidate list.
enum List<'a> {
    Borrowed(&'a [u32]),
    Owned(Vec<u32>),
}

impl List<'_> {
    fn as_slice(&self) -> &[u32] {
        match self {
            List::Borrowed(s) => s,
            List::Owned(v) => v,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    exact: HashMap<String, Bucket>,
    /// `*.example.com` keyed by `.example.com`.
    suffix: HashMap<String, Bucket>,
    /// `example.*` keyed by `example.`.
    prefix: HashMap<String, Bucket>,
    any: Bucket,
}

struct Pending {
    prefixes: Vec<(String, u32)>,
    regexes: Vec<(String, u32)>,
    no_path: Vec<u32>,
}

impl Pending {
    fn new() -> Self {
        Self { prefixes: Vec::new(), regexes: Vec::new(), no_path: Vec::new() }
    }

    fn add(&mut self, m: &Matcher, rank: u32) {
        if m.paths.is_empty() {
            self.no_path.push(rank);
        }
        for p in &m.paths {
            match p {
                PathPat::Prefix(s) => self.prefixes.push((s.clone(), rank)),
                PathPat::Regex(re) => self.regexes.push((re.as_str().to_owned(), rank)),
            }
        }
    }

    fn finish(self) -> Bucket {
        let mut b = Bucket::new();
        for (p, m) in &self.prefixes {
            b.insert_prefix(p, *m);
        }
        if !self.regexes.is_empty() {
            // every pattern compiled on its own already, so the set compiles too
            if let Ok(set) = RegexSet::new(self.regexes.iter().map(|(p, _)| p.as_str())) {
                b.regex = Some((set, self.regexes.iter().map(|(_, m)| *m).collect()));
            }
        }
        b.no_path = self.no_path;
        b.no_path.dedup();
        b
    }
}

/// Finishes buckets (compiling their regex sets) on every core when there are many.
fn finish_all(pending: Vec<(u8, String, Pending)>) -> Vec<(u8, String, Bucket)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let regexes: usize = pending.iter().map(|(_, _, p)| p.regexes.len()).sum();
    if threads == 1 || regexes < 256 {
        return pending.into_iter().map(|(k, key, p)| (k, key, p.finish())).collect();
    }
    let mut lanes: Vec<Vec<(u8, String, Pending)>> = (0..threads).map(|_| Vec::new()).collect();
    // spread by regex count so that lanes take about the same time
    let mut sorted = pending;
    sorted.sort_by_key(|(_, _, p)| std::cmp::Reverse(p.regexes.len()));
    let mut load = vec![0usize; threads];
    for item in sorted {
        let lane = (0..threads).min_by_key(|l| load[*l]).unwrap_or(0);
        load[lane] += item.2.regexes.len() + 1;
        lanes[lane].push(item);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = lanes
            .into_iter()
            .map(|lane| {
                scope.spawn(move || {
                    lane.into_iter().map(|(k, key, p)| (k, key, p.finish())).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

impl Index {
    pub(crate) fn build(matchers: &[Matcher]) -> Self {
        let mut exact: HashMap<String, Pending> = HashMap::new();
        let mut suffix: HashMap<String, Pending> = HashMap::new();
        let mut prefix: HashMap<String, Pending> = HashMap::new();
        let mut any = Pending::new();
        for (rank, m) in matchers.iter().enumerate() {
            let rank = rank as u32;
            if m.hosts.is_empty() {
                any.add(m, rank);
                continue;
            }
            let mut seen: Vec<(u8, &str)> = Vec::new();
            for h in &m.hosts {
                let key = match &h.pat {
                    Wild::Exact(s) => (0u8, s.as_str()),
                    Wild::Suffix(s) => (1u8, s.as_str()),
                    Wild::Prefix(s) => (2u8, s.as_str()),
                };
                if seen.contains(&key) {
                    continue;
                }
                seen.push(key);
                let map = match key.0 {
                    0 => &mut exact,
                    1 => &mut suffix,
                    _ => &mut prefix,
                };
                map.entry(key.1.to_owned()).or_insert_with(Pending::new).add(m, rank);
            }
        }
        let mut pending: Vec<(u8, String, Pending)> = Vec::new();
        pending.extend(exact.into_iter().map(|(k, v)| (0, k, v)));
        pending.extend(suffix.into_iter().map(|(k, v)| (1, k, v)));
        pending.extend(prefix.into_iter().map(|(k, v)| (2, k, v)));
        pending.push((3, String::new(), any));
        let mut index = Self::default();
        for (kind, key, bucket) in finish_all(pending) {
            match kind {
                0 => {
                    index.exact.insert(key, bucket);
                }
                1 => {
                    index.suffix.insert(key, bucket);
                }
                2 => {
                    index.prefix.insert(key, bucket);
                }
                _ => index.any = bucket,
            }
        }
        index
    }

    /// The best matcher for the request, and what it matched.
    pub(crate) fn find<'m>(
        &self,
        matchers: &'m [Matcher],
        ctx: &Ctx<'_>,
    ) -> Option<(&'m Matcher, Hit)> {
        let mut lists: Vec<List<'_>> = Vec::new();
        if let Some(host) = ctx.host {
            if let Some(b) = self.exact.get(host) {
                b.candidates(ctx.path, &mut lists);
            }
            if !self.suffix.is_empty() {
                // every ".rest" of the host, at label boundaries
                for (i, c) in host.char_indices() {
                    if c == '.' {
                        if let Some(b) = self.suffix.get(&host[i..]) {
                            b.candidates(ctx.path, &mut lists);
                        }
                    }
                }
            }
            if !self.prefix.is_empty() {
                for (i, c) in host.char_indices() {
                    if c == '.' {
                        if let Some(b) = self.prefix.get(&host[..=i]) {
                            b.candidates(ctx.path, &mut lists);
                        }
                    }
                }
            }
        }
        self.any.candidates(ctx.path, &mut lists);

        // k-way merge in rank order; the first full match is the best
        let mut cursors = vec![0usize; lists.len()];
        let mut last_tested = u32::MAX;
        loop {
            let mut best: Option<(usize, u32)> = None;
            for (li, list) in lists.iter().enumerate() {
                if let Some(&r) = list.as_slice().get(cursors[li]) {
                    if best.is_none_or(|(_, b)| r < b) {
                        best = Some((li, r));
                    }
                }
            }
            let (li, rank) = best?;
            cursors[li] += 1;
            if rank == last_tested {
                continue;
            }
            last_tested = rank;
            let m = &matchers[rank as usize];
            if let Some(hit) = m.test(ctx) {
                return Some((m, hit));
            }
        }
    }
}
