//! What waits for documents further down the input: relation values (links) whose targets are
//! not written yet, and documents that cannot be written before a target of a required relation
//! is. Each waits on the (collection, id) pairs it lacks; when one arrives, what no longer lacks
//! anything is handed back. Holds only what points forward, so an export read back in its own
//! order (targets first) leaves little here: cycles and self-references.

use std::collections::HashMap;

use super::Entry;

/// A relation value written after its document: a to-one relation (one target, set with an
/// update) or a list (its targets in order, its join rows inserted).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Link {
    pub line: u64,
    /// The collection (index) and id of the document holding the relation.
    pub collection: usize,
    pub source: String,
    /// The relation field (index).
    pub field: usize,
    /// The collection (index) the relation points to.
    pub to: usize,
    pub targets: Vec<String>,
}

/// A document waiting for the target of a required relation.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Held {
    pub entry: Entry,
    /// The relation field (index) whose target it waits for, and that target.
    pub field: usize,
    pub target: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Waiter {
    Link(u64),
    Held(u64),
}

#[derive(Debug, Default)]
pub(super) struct Waiting {
    next: u64,
    /// Each waiting link with the targets it still lacks.
    links: HashMap<u64, (Link, Vec<String>)>,
    held: HashMap<u64, Held>,
    by_target: HashMap<(usize, String), Vec<Waiter>>,
}

impl Waiting {
    /// Keeps `link` until every one of `missing` (ids in `link.to`) has arrived.
    pub fn add_link(&mut self, link: Link, missing: Vec<String>) {
        let key = self.key();
        for id in &missing {
            self.by_target
                .entry((link.to, id.clone()))
                .or_default()
                .push(Waiter::Link(key));
        }
        self.links.insert(key, (link, missing));
    }

    /// Keeps a document until `to`'s document `held.target` arrives.
    pub fn hold(&mut self, held: Held, to: usize) {
        let key = self.key();
        self.by_target
            .entry((to, held.target.clone()))
            .or_default()
            .push(Waiter::Held(key));
        self.held.insert(key, held);
    }

    fn key(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// The document `id` of `collection` was written: the links that lacked only it, and the
    /// documents held for it.
    pub fn arrive(&mut self, collection: usize, id: &str) -> (Vec<Link>, Vec<Entry>) {
        let mut links = Vec::new();
        let mut entries = Vec::new();
        let Some(waiters) = self.by_target.remove(&(collection, id.to_string())) else {
            return (links, entries);
        };
        for waiter in waiters {
            match waiter {
                Waiter::Link(key) => {
                    let Some((_, missing)) = self.links.get_mut(&key) else {
                        continue;
                    };
                    missing.retain(|m| m != id);
                    if missing.is_empty()
                        && let Some((link, _)) = self.links.remove(&key)
                    {
                        links.push(link);
                    }
                }
                Waiter::Held(key) => {
                    if let Some(held) = self.held.remove(&key) {
                        entries.push(held.entry);
                    }
                }
            }
        }
        (links, entries)
    }

    /// What still waits at the end: links with the targets they lack, and held documents, in
    /// the order of their lines.
    pub fn into_parts(self) -> (Vec<(Link, Vec<String>)>, Vec<Held>) {
        let mut links: Vec<_> = self.links.into_values().collect();
        links.sort_by_key(|(link, _)| (link.line, link.field));
        let mut held: Vec<_> = self.held.into_values().collect();
        held.sort_by_key(|held| held.entry.line);
        (links, held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::now;

    fn link(line: u64, targets: &[&str]) -> Link {
        Link {
            line,
            collection: 0,
            source: format!("s{line}"),
            field: 0,
            to: 1,
            targets: targets.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn entry(line: u64) -> Entry {
        Entry {
            line,
            collection: 0,
            id: format!("e{line}"),
            created: now(),
            updated: now(),
            values: Vec::new(),
        }
    }

    #[test]
    fn links_wait_for_every_missing_target_and_held_documents_for_theirs() {
        let mut waiting = Waiting::default();
        // A list lacking two of its targets, a to-one link lacking one, a held document.
        waiting.add_link(link(1, &["a", "b", "c"]), vec!["a".into(), "c".into()]);
        waiting.add_link(link(2, &["c"]), vec!["c".into()]);
        waiting.hold(
            Held {
                entry: entry(3),
                field: 0,
                target: "a".into(),
            },
            1,
        );
        // An id of another collection, or one nothing waits for, releases nothing.
        assert_eq!(waiting.arrive(0, "a"), (vec![], vec![]));
        assert_eq!(waiting.arrive(1, "b"), (vec![], vec![]));
        // `a` releases the held document; the list still lacks `c`.
        assert_eq!(waiting.arrive(1, "a"), (vec![], vec![entry(3)]));
        // `c` completes both links, each handed back once.
        let (mut links, entries) = waiting.arrive(1, "c");
        links.sort_by_key(|l| l.line);
        assert_eq!(links, vec![link(1, &["a", "b", "c"]), link(2, &["c"])]);
        assert!(entries.is_empty());
        assert_eq!(waiting.arrive(1, "c"), (vec![], vec![]));
        let (links, held) = waiting.into_parts();
        assert!(links.is_empty() && held.is_empty());
    }

    #[test]
    fn what_never_arrives_is_left_in_line_order() {
        let mut waiting = Waiting::default();
        waiting.add_link(link(9, &["x", "y"]), vec!["x".into(), "y".into()]);
        waiting.add_link(link(4, &["z"]), vec!["z".into()]);
        waiting.hold(
            Held {
                entry: entry(7),
                field: 2,
                target: "q".into(),
            },
            1,
        );
        waiting.arrive(1, "y");
        let (links, held) = waiting.into_parts();
        assert_eq!(
            links,
            vec![
                (link(4, &["z"]), vec!["z".to_string()]),
                (link(9, &["x", "y"]), vec!["x".to_string()]),
            ]
        );
        assert_eq!(held.len(), 1);
        assert_eq!((held[0].entry.line, held[0].field), (7, 2));
    }
}
