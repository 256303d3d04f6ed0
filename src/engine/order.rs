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
    let mut done = vec![false; items.len()];
    let mut out = Vec::with_capacity(items.len());
    for group in groups.values() {
        // Within one order value: dependencies first, then name. A dependency in another order
        // group is already done or comes later by the user's explicit choice.
        let in_group: BTreeSet<usize> = group.iter().copied().collect();
        for _ in group {
            let remaining = group.iter().copied().filter(|&i| !done[i]);
            let ready = remaining.clone().filter(|&i| {
                deps[i]
                    .iter()
                    .all(|&d| done[d] || d == i || !in_group.contains(&d))
            });
            let by_name = |&i: &usize| items[i].name.as_str();
            // No ready item means a cycle (compose rejects those): take the first by name.
            let next = ready
                .min_by_key(by_name)
                .or_else(|| remaining.min_by_key(by_name));
            let next = next.expect("an item of the group remains");
            done[next] = true;
            out.push(next);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
