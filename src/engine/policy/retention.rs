//! Retention: which good copies a plan deletes after a new one succeeds.
//!
//! A pure function of the copies and the plan's limits, so tests are exact:
//! keep at most `keep_count` copies and at most `keep_bytes` in all, the
//! oldest go first, and the newest good copy is never deleted whatever the
//! limits say. Failed copies are not counted (they hold no archive).

/// A copy as retention sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    pub id: u64,
    /// Sortable creation time (`YYYY-MM-DD HH:MM:SS`).
    pub created: String,
    pub size: u64,
}

/// The limits of a plan; `None` is "no limit".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub keep_count: Option<u64>,
    pub keep_bytes: Option<u64>,
}

/// The ids to delete, oldest first.
pub fn to_delete(copies: &[Kept], limits: Limits) -> Vec<u64> {
    let mut newest_first: Vec<&Kept> = copies.iter().collect();
    newest_first.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    let mut total = 0u64;
    let mut doomed = Vec::new();
    for (i, c) in newest_first.iter().enumerate() {
        total = total.saturating_add(c.size);
        if i == 0 {
            continue; // the newest good copy always stays
        }
        let over_count = limits.keep_count.is_some_and(|n| i as u64 >= n);
        let over_size = limits.keep_bytes.is_some_and(|b| total > b);
        if over_count || over_size {
            doomed.push(c.id);
        }
    }
    doomed.reverse();
    doomed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copies(sizes: &[u64]) -> Vec<Kept> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| Kept {
                id: i as u64 + 1,
                created: format!("2026-11-{:02} 03:00:00", i + 1),
                size,
            })
            .collect()
    }

    #[test]
    fn policies() {
        let five = copies(&[10, 10, 10, 10, 10]); // ids 1 (oldest) .. 5 (newest)
        let cases: &[(Limits, &[u64])] = &[
            (Limits::default(), &[]),
            (
                Limits {
                    keep_count: Some(3),
                    keep_bytes: None,
                },
                &[1, 2],
            ),
            (
                Limits {
                    keep_count: Some(1),
                    keep_bytes: None,
                },
                &[1, 2, 3, 4],
            ),
            (
                Limits {
                    keep_count: Some(0),
                    keep_bytes: None,
                },
                &[1, 2, 3, 4],
            ),
            (
                Limits {
                    keep_count: None,
                    keep_bytes: Some(25),
                },
                &[1, 2, 3],
            ),
            (
                Limits {
                    keep_count: None,
                    keep_bytes: Some(5),
                },
                &[1, 2, 3, 4],
            ),
            (
                Limits {
                    keep_count: Some(4),
                    keep_bytes: Some(30),
                },
                &[1, 2],
            ),
            (
                Limits {
                    keep_count: Some(10),
                    keep_bytes: Some(1000),
                },
                &[],
            ),
        ];
        for (limits, expected) in cases {
            assert_eq!(to_delete(&five, *limits), *expected, "{limits:?}");
        }
    }

    #[test]
    fn the_newest_copy_stays_even_when_alone_and_too_big() {
        let one = copies(&[100]);
        assert!(to_delete(
            &one,
            Limits {
                keep_count: Some(0),
                keep_bytes: Some(1)
            }
        )
        .is_empty());
        assert!(to_delete(
            &[],
            Limits {
                keep_count: Some(1),
                keep_bytes: None
            }
        )
        .is_empty());
    }

    #[test]
    fn order_of_input_does_not_matter() {
        let mut c = copies(&[1, 2, 3, 4]);
        c.reverse();
        assert_eq!(
            to_delete(
                &c,
                Limits {
                    keep_count: Some(2),
                    keep_bytes: None
                }
            ),
            [1, 2]
        );
    }
}
