//! What the fuzz targets check (fuzz/fuzz_targets/, run by `cargo fuzz`
//! with libFuzzer's coverage guidance; scripts/fuzz.sh): one function per
//! parser of hostile input, each panicking when its property fails. The
//! crate's own randomized tests (`src/fuzz.rs`) run the same functions, so
//! every property is written once. Built with the `fuzz` feature and for
//! the tests only; the shipped binary has none of it.
//!
//! The properties:
//! - the stdin document: what is read writes back as a document that
//!   reads again (names that are not XML names are refused);
//! - the request: whatever the environment and stdin hold, the answer is
//!   one well-formed document;
//! - the listing: what is read passes its checks, writes back, and reads
//!   back equal; checking it against a small archive never panics;
//! - the DDL checker: what passes is rebuilt with a head of its own.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::config::Config;
use crate::engine::test_support::ddl::{self, Scope};
use crate::engine::test_support::listing::{DefinitionKind, Listing};
use crate::protocol::Incoming;
use crate::xml::Element;

/// The stdin document: anything read writes back as a document that
/// reads again.
pub fn stdin_document(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(doc) = Element::parse(text) {
        let written = doc.to_document();
        if let Err(e) = Element::parse(&written) {
            panic!("an accepted document writes back as one that does not read ({e}): {written}");
        }
    }
}

/// A configuration whose database cannot be reached (nothing in the
/// request's path may need one to answer).
static CONFIG: LazyLock<Config> = LazyLock::new(|| {
    let env = BTreeMap::from([(
        "BILLMGR_OPS_DB".to_string(),
        "mysql://fuzz@127.0.0.1:1/billmgr".to_string(),
    )]);
    let mgrdir = std::env::temp_dir().join("billmgr-ops-fuzz");
    Config::load(Some(&mgrdir), None, &env).expect("a configuration from the environment alone")
});

/// The request: `NAME=value` lines of environment up to the first NUL,
/// then stdin. Whatever they hold, the answer (from an empty registry:
/// no function runs) is one well-formed document.
pub fn request(data: &[u8]) {
    let (head, stdin) = match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], data[at + 1..].to_vec()),
        None => (data, Vec::new()),
    };
    let mut env = BTreeMap::new();
    for line in String::from_utf8_lossy(head).lines() {
        if let Some((k, v)) = line.split_once('=') {
            env.insert(k.to_string(), v.to_string());
        }
    }
    let whole_lists = env.contains_key("WHOLE");
    let answer = crate::protocol::handle(
        &[],
        Incoming {
            env,
            stdin,
            whole_lists,
        },
        &CONFIG,
    );
    let written = answer.to_document();
    if let Err(e) = Element::parse(&written) {
        panic!("the answer is not a document ({e}): {written}");
    }
}

/// The listing: what is read is checked, writes back and reads back the
/// same; bounding it by a small archive never panics.
pub fn listing(data: &[u8]) {
    if let Ok(l) = Listing::from_json(data) {
        let again = Listing::from_json(&l.to_json())
            .unwrap_or_else(|e| panic!("an accepted listing writes back as a refused one: {e:#}"));
        assert_eq!(
            again, l,
            "a listing reads back otherwise than it was written"
        );
        let _ = l.check_within(4096);
    }
}

/// The scope every DDL input is checked in.
static SCOPE: LazyLock<Scope> = LazyLock::new(|| {
    Scope::new(
        "billmgr",
        "billmgr",
        ["billmgr", "other"].map(String::from),
        ["sys_exec"].map(String::from),
        ["item"].map(String::from),
    )
});

/// The DDL checker: a table or a definition from a copy is refused, or
/// rebuilt with a head of its own.
pub fn ddl(data: &[u8]) {
    let sql = String::from_utf8_lossy(data);
    if let Ok(rebuilt) = ddl::table(&SCOPE, &sql, "item") {
        assert!(rebuilt.starts_with("CREATE TABLE"), "{rebuilt}");
    }
    for kind in [
        DefinitionKind::Trigger,
        DefinitionKind::Procedure,
        DefinitionKind::View,
    ] {
        let checked = ddl::definition(
            &SCOPE,
            &ddl::Object {
                kind,
                name: match kind {
                    DefinitionKind::Trigger => "t",
                    DefinitionKind::View => "v",
                    _ => "p",
                },
                table: "item",
                create: &sql,
                sql_mode: "",
                definer: None,
            },
        );
        if let Ok(rebuilt) = checked {
            assert!(rebuilt.starts_with("CREATE"), "{rebuilt}");
        }
    }
}
