//! Randomized tests of the parsers that read hostile input: the request
//! (environment and stdin document), the listing of a copy and the DDL
//! checker. Each starts from valid inputs and mutates them thousands of
//! times (flipped, cut, repeated and spliced bytes, swapped tokens), and
//! requires an answer, accepted or refused, without a panic and within the
//! bounds: the properties of `crate::fuzzing`, which the coverage-guided
//! targets in fuzz/ check too (scripts/fuzz.sh). These run with every
//! `cargo test`; the seed is fixed so a failure reproduces, and
//! `BMO_FUZZ_ITERATIONS` runs longer.

/// xorshift64*: enough randomness for mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[allow(clippy::disallowed_methods)]
fn iterations() -> usize {
    std::env::var("BMO_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

/// One random change to `data`, with pieces from `dictionary`.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, dictionary: &[&[u8]]) {
    let len = data.len();
    match rng.below(6) {
        0 if len > 0 => {
            let at = rng.below(len);
            data[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            data.truncate(at);
        }
        2 if len > 0 => {
            let (a, b) = (rng.below(len), rng.below(len));
            let (a, b) = (a.min(b), a.max(b));
            let piece = data[a..b].to_vec();
            let at = rng.below(len);
            data.splice(
                at..at,
                piece
                    .iter()
                    .copied()
                    .cycle()
                    .take(piece.len() * (1 + rng.below(4))),
            );
        }
        3 => {
            let word = dictionary[rng.below(dictionary.len())];
            let at = rng.below(len + 1);
            data.splice(at..at, word.iter().copied());
        }
        4 if len > 0 => {
            let at = rng.below(len);
            data[at] = rng.next() as u8;
        }
        _ => {
            let word = dictionary[rng.below(dictionary.len())];
            data.extend_from_slice(word);
        }
    }
}

#[test]
fn fuzz_the_request_parser() {
    let seeds: &[&[u8]] = &[
        b"<?xml version=\"1.0\"?><doc lang=\"ru\" func=\"runningoperation\"><tparams><func>runningoperation.edit</func><elid>3, 7</elid><sok>ok</sok></tparams><metadata name=\"x\" type=\"form\"><form><field name=\"a\"><input type=\"text\"/></field></form></metadata><messages><msg name=\"t\">&lt;&#1044;&amp;</msg></messages></doc>",
        b"<doc><![CDATA[x]]><!-- c --><a b='1' c=\"2\">t</a></doc>",
        b"",
    ];
    let dictionary: &[&[u8]] = &[
        b"<a>",
        b"</a>",
        b"<doc>",
        b"<!DOCTYPE x [<!ENTITY e 'x'>]>",
        b"&e;",
        b"&#0;",
        b"&#x110000;",
        b"<![CDATA[",
        b"]]>",
        b"<!--",
        b"-->",
        b"<?xml?>",
        b"\xff\xfe",
        b"\0",
        b"=\"",
        b"<tparams><p_cnt>-1</p_cnt></tparams>",
    ];
    let mut rng = Rng(0x5EED_0001);
    for _ in 0..iterations() {
        let mut doc = seeds[rng.below(seeds.len())].to_vec();
        for _ in 0..1 + rng.below(8) {
            mutate(&mut rng, &mut doc, dictionary);
        }
        crate::fuzzing::stdin_document(&doc);
        let mut input = b"PARAM_func=runningoperation\nAUTH_LEVEL=29\n".to_vec();
        if rng.below(2) == 0 {
            input.extend_from_slice(b"WHOLE=1\n");
        }
        input.push(0);
        input.extend_from_slice(&doc);
        crate::fuzzing::request(&input);
    }
}

#[test]
fn fuzz_the_listing_checker() {
    use crate::engine::test_support::listing::*;
    let entry = |path: &str, offset: u64, size: u64| Entry {
        path: path.into(),
        offset,
        size,
        sha256: "ab".repeat(32),
    };
    let listing = Listing {
        format: FORMAT.into(),
        version: VERSION,
        name: "c".into(),
        created: "2026-12-01 00:00:00".into(),
        tables: vec![TableEntry {
            name: "item".into(),
            create: "CREATE TABLE `item` (`id` int)".into(),
            schema_entry: entry("schema/tables/item.sql", 512, 30),
            columns: vec!["id".into(), "account".into()],
            primary_key: vec!["id".into()],
            foreign_keys: vec![ForeignKey {
                columns: vec!["account".into()],
                ref_table: "account".into(),
                ref_columns: vec!["id".into()],
            }],
            rows: 2,
            chunks: vec![Chunk {
                entry: entry("data/item/0.tsv.zst", 1536, 40),
                rows: 2,
                text_size: 8,
                text_sha256: "cd".repeat(32),
                first_key: Some(1),
                last_key: Some(2),
                ..Chunk::default()
            }],
            ..TableEntry::default()
        }],
        ..Listing::default()
    };
    let valid = listing.to_json();
    assert!(Listing::from_json(&valid).is_ok());
    let dictionary: &[&[u8]] = &[
        b"18446744073709551615",
        b"-1",
        b"1152921504606846976",
        b"\"billmgrops_x\"",
        b"\"../..\"",
        b"null",
        b"[]",
        b"{}",
        b"\"\\u0000\"",
        b"0",
        b"\"view\"",
        b"\"/etc/shadow\"",
    ];
    let mut rng = Rng(0x5EED_0002);
    for _ in 0..iterations() {
        let mut json = valid.clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut json, dictionary);
        }
        crate::fuzzing::listing(&json);
    }
}

#[test]
fn fuzz_the_ddl_checker() {
    let seeds: &[&str] = &[
        "CREATE TABLE `item` (`id` int NOT NULL, `name` varchar(10) DEFAULT 'a;b', PRIMARY KEY (`id`)) ENGINE=InnoDB",
        "CREATE DEFINER=`root`@`localhost` TRIGGER t BEFORE INSERT ON item FOR EACH ROW BEGIN IF NEW.id > 0 THEN SET @a = 1; END IF; END",
        "CREATE DEFINER=`root`@`localhost` PROCEDURE `p`(IN a INT) BEGIN DECLARE x INT; WHILE x < a DO SET x = x + 1; END WHILE; END",
    ];
    let dictionary: &[&[u8]] = &[
        b";",
        b"`",
        b"'",
        b"\"",
        b"/*!50000 ",
        b"*/",
        b"-- ",
        b"#",
        b"\\",
        b"BEGIN",
        b"END",
        b"IF",
        b"CASE",
        b"other.",
        b"mysql.user",
        b"GRANT",
        b"@@global.",
        b"DEFINER=",
        b"\0",
        b"\xd0\x94",
    ];
    let mut rng = Rng(0x5EED_0003);
    for _ in 0..iterations() {
        let mut sql = seeds[rng.below(seeds.len())].as_bytes().to_vec();
        for _ in 0..1 + rng.below(6) {
            mutate(&mut rng, &mut sql, dictionary);
        }
        crate::fuzzing::ddl(&sql);
    }
}
