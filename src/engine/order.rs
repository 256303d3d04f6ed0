//! The order updates run in within one pass: `io.pullpilot.order` first, then compose
//! `depends_on` (a dependency is updated before the services that depend on it), then name.
//! Pure.

use std::collections::{BTreeMap, BTreeSet};

/// One item to order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    /// `(project, service)` when the container belongs to a compose service.
    pub service: Option<(String, String)>,
    pub order: i64,
    /// Services of the same project this one depends on.
    pub depends_on: Vec<String>,
}

/// Indices of `items` in update order: ascending `order` label; within one label value,
/// dependencies before dependents, then by name.
pub fn update_order(items: &[Item]) -> Vec<usize> {
    let by_service: BTreeMap<(&str, &str), Vec<usize>> =
        items
            .iter()
            .enumerate()
            .fold(BTreeMap::new(), |mut map, (i, item)| {
                if let Some((p, s)) = &item.service {
                    map.entry((p.as_str(), s.as_str())).or_default().push(i);
                }
                map
            });
    let deps: Vec<BTreeSet<usize>> = items
        .iter()
        .map(|item| {
            let Some((project, _)) = &item.service else {
                return BTreeSet::new();
            };
            item.depends_on
                .iter()
                .filter_map(|d| by_service.get(&(project.as_str(), d.as_str())))
                .flatten()
                .copied()
                .collect()
        })
        .collect();
    let mut groups: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        groups.entry(item.order).or_default().push(i);
    }
    // Per group, Kahn's algorithm with the ready items kept by name: O(n log n + edges).
    // Dependencies outside the group (another label value) and on itself do not hold an item
    // back; when a cycle leaves nothing ready, the remaining item first by name goes next.
    let mut group_of = vec![0usize; items.len()];
    for (g, group) in groups.values().enumerate() {
        for &i in group {
            group_of[i] = g;
        }
    }
    let mut waiting_on = vec![0usize; items.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            step();
            if d != i && group_of[d] == group_of[i] {
                waiting_on[i] += 1;
                dependents[d].push(i);
            }
        }
    }
    let mut done = vec![false; items.len()];
    let mut out = Vec::with_capacity(items.len());
    for group in groups.values() {
        let key = |i: usize| (items[i].name.as_str(), i);
        let mut remaining: BTreeSet<(&str, usize)> = group.iter().map(|&i| key(i)).collect();
        let mut ready: BTreeSet<(&str, usize)> = group
            .iter()
            .filter(|&&i| waiting_on[i] == 0)
            .map(|&i| key(i))
            .collect();
        while let Some(first) = ready.pop_first().or_else(|| remaining.first().copied()) {
            step();
            let next = first.1;
            remaining.remove(&first);
            done[next] = true;
            out.push(next);
            for &j in &dependents[next] {
                step();
                if !done[j] {
                    waiting_on[j] -= 1;
                    if waiting_on[j] == 0 {
                        ready.insert(key(j));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
thread_local! {
    /// Units of work `update_order` did on this thread (candidates looked at, edges followed).
    static STEPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts one unit of work (tests only: a scaling test asserts the count grows ~n log n).
#[inline]
fn step() {
    #[cfg(test)]
    STEPS.with(|s| s.set(s.get() + 1));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` containers in projects of 10 services, each depending on the one before it, and
    /// every 50th with `io.pullpilot.order=1`.
    fn fleet(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| {
                let s = i % 10;
                Item {
                    name: format!("p{:04}-s{s}-1", i / 10),
                    service: Some((format!("p{:04}", i / 10), format!("s{s}"))),
                    order: i64::from(i % 50 == 49),
                    depends_on: if s > 0 {
                        vec![format!("s{}", s - 1)]
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    }

    fn steps(items: &[Item]) -> (u64, Vec<usize>) {
        STEPS.with(|s| s.set(0));
        let order = update_order(items);
        (STEPS.with(std::cell::Cell::get), order)
    }

    #[test]
    fn ordering_is_not_quadratic_in_containers() {
        let (small, _) = steps(&fleet(1000));
        let big_fleet = fleet(4000);
        let (big, order) = steps(&big_fleet);
        // 4× the containers: at most 4× the work, with room for a logarithmic factor.
        assert!(
            big <= small * 5,
            "1,000 containers: {small} steps; 4,000: {big} steps"
        );
        // Still right at that size: every dependency before its dependents (same label).
        let mut at = vec![0; order.len()];
        for (pos, &i) in order.iter().enumerate() {
            at[i] = pos;
        }
        for (i, item) in big_fleet.iter().enumerate() {
            if i % 10 > 0 && item.order == big_fleet[i - 1].order {
                assert!(
                    at[i - 1] < at[i],
                    "{} before {}",
                    big_fleet[i - 1].name,
                    item.name
                );
            }
        }
    }

    fn item(name: &str, service: &str, order: i64, deps: &[&str]) -> Item {
        Item {
            name: name.into(),
            service: Some(("shop".into(), service.into())),
            order,
            depends_on: deps.iter().map(|d| (*d).to_string()).collect(),
        }
    }

    fn names(items: &[Item]) -> Vec<&str> {
        update_order(items)
            .into_iter()
            .map(|i| items[i].name.as_str())
            .collect()
    }

    #[test]
    fn name_order_without_labels_or_dependencies() {
        let items = [
            item("c", "c", 0, &[]),
            item("a", "a", 0, &[]),
            item("b", "b", 0, &[]),
        ];
        assert_eq!(names(&items), ["a", "b", "c"]);
    }

    #[test]
    fn order_label_comes_first() {
        let items = [item("a", "a", 10, &[]), item("z", "z", -1, &[])];
        assert_eq!(names(&items), ["z", "a"]);
    }

    #[test]
    fn dependencies_before_dependents() {
        let items = [
            item("shop-app-1", "app", 0, &["db", "cache"]),
            item("shop-cache-1", "cache", 0, &["db"]),
            item("shop-db-1", "db", 0, &[]),
        ];
        assert_eq!(names(&items), ["shop-db-1", "shop-cache-1", "shop-app-1"]);
    }

    #[test]
    fn dependencies_in_other_projects_or_absent_are_ignored() {
        let mut other = item("x-db-1", "db", 0, &[]);
        other.service = Some(("x".into(), "db".into()));
        let items = [item("shop-app-1", "app", 0, &["db", "gone"]), other];
        assert_eq!(names(&items), ["shop-app-1", "x-db-1"]);
    }

    #[test]
    fn an_explicit_order_label_wins_over_depends_on() {
        let items = [
            item("shop-app-1", "app", -1, &["db"]),
            item("shop-db-1", "db", 0, &[]),
        ];
        assert_eq!(names(&items), ["shop-app-1", "shop-db-1"]);
    }

    #[test]
    fn cycles_do_not_hang() {
        let items = [item("a", "a", 0, &["b"]), item("b", "b", 0, &["a"])];
        assert_eq!(names(&items), ["a", "b"]);
    }
}
