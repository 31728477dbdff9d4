//! Collations a copy names that the target server lacks: a copy made on
//! MySQL 8 names `utf8mb4_0900_ai_ci` (its default), which MariaDB before
//! 11.4 does not know; one made on MariaDB 11 may name
//! `utf8mb4_uca1400_ai_ci`, which MySQL does not. Such a name is replaced
//! by the nearest the target has (same character set; the same accent and
//! case rules where the target has them, else the Unicode or general
//! collation), and the replacement is reported. A name the target knows
//! is never touched.

use std::collections::HashSet;

/// The collation to use for `name` on a server that knows `known` (lower
/// case); `None` when `name` is known there, or nothing fits.
pub fn nearest(name: &str, known: &HashSet<String>) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if known.contains(&lower) {
        return None;
    }
    let charset = lower.split('_').next().unwrap_or_default();
    if charset.is_empty() {
        return None;
    }
    let with = |suffix: &str| format!("{charset}_{suffix}");
    let candidates: Vec<String> = if lower.ends_with("_bin") {
        vec![with("bin")]
    } else if lower.ends_with("_as_cs") || lower.ends_with("_as_ci") || lower.ends_with("_cs") {
        vec![
            with("uca1400_as_cs"),
            with("0900_as_cs"),
            with("unicode_520_ci"),
            with("bin"),
        ]
    } else {
        vec![
            with("uca1400_ai_ci"),
            with("0900_ai_ci"),
            with("unicode_520_ci"),
            with("unicode_ci"),
            with("general_ci"),
        ]
    };
    candidates.into_iter().find(|c| known.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(names: &[&str]) -> HashSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn mysqls_collations_on_mariadb_and_back() {
        let mariadb_10_11 = server(&[
            "utf8mb4_general_ci",
            "utf8mb4_bin",
            "utf8mb4_unicode_ci",
            "utf8mb4_unicode_520_ci",
            "latin1_swedish_ci",
            "utf8mb3_general_ci",
        ]);
        assert_eq!(
            nearest("utf8mb4_0900_ai_ci", &mariadb_10_11).as_deref(),
            Some("utf8mb4_unicode_520_ci")
        );
        assert_eq!(
            nearest("UTF8MB4_0900_BIN", &mariadb_10_11).as_deref(),
            Some("utf8mb4_bin")
        );
        assert_eq!(
            nearest("utf8mb4_0900_as_cs", &mariadb_10_11).as_deref(),
            Some("utf8mb4_unicode_520_ci")
        );
        assert_eq!(
            nearest("utf8mb4_ru_0900_ai_ci", &mariadb_10_11).as_deref(),
            Some("utf8mb4_unicode_520_ci")
        );
        // Known names stay as they are.
        assert_eq!(nearest("utf8mb4_general_ci", &mariadb_10_11), None);
        assert_eq!(nearest("latin1_swedish_ci", &mariadb_10_11), None);
        // MariaDB 11's default on MySQL.
        let mysql = server(&["utf8mb4_0900_ai_ci", "utf8mb4_0900_as_cs", "utf8mb4_bin"]);
        assert_eq!(
            nearest("utf8mb4_uca1400_ai_ci", &mysql).as_deref(),
            Some("utf8mb4_0900_ai_ci")
        );
        assert_eq!(
            nearest("utf8mb4_uca1400_as_cs", &mysql).as_deref(),
            Some("utf8mb4_0900_as_cs")
        );
        // Nothing of the character set: left for the server to refuse.
        assert_eq!(nearest("koi8r_0900_ai_ci", &mysql), None);
        assert_eq!(nearest("", &mysql), None);
    }
}
