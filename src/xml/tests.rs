//! The XML reader's and writer's unit tests.

use super::*;

#[test]
fn round_trip_keeps_unknown_content() {
    let src = r#"<?xml version="1.0"?><doc lang="en" func="x"><metadata name="x" type="list"><!-- c --><col name="a"/></metadata><messages><msg name="t">A &amp; B</msg></messages><![CDATA[raw <b>]]></doc>"#;
    let doc = Element::parse(src).unwrap();
    let again = Element::parse(&doc.to_document()).unwrap();
    assert_eq!(doc, again);
    assert_eq!(
        doc.find("messages")
            .unwrap()
            .find("msg")
            .unwrap()
            .text_content(),
        "A & B"
    );
}

#[test]
fn entities_and_char_refs_resolve() {
    let doc = Element::parse("<doc a=\"x&quot;y\">&lt;&#1044;&#x41;&gt;</doc>").unwrap();
    assert_eq!(doc.text_content(), "<ДA>");
    assert_eq!(doc.get_attr("a"), Some("x\"y"));
}

#[test]
fn malformed_documents_are_refused() {
    for bad in [
        "",
        "<doc",
        "<doc>",
        "<doc></dog>",
        "<a/><b/>",
        "text<doc/>",
        "<doc>&bogus;</doc>",
        "<doc a='1' a='2'/>",
        "<!DOCTYPE doc [<!ENTITY x 'y'>]><doc>&x;</doc>",
        "</doc>",
        // Not names, though quick-xml reads them as such (found by a
        // coverage-guided fuzzer).
        "<doc>< /></doc>",
        "<a<b>",
        "<doc c<d='1'/>",
        "<doc><1a/></doc>",
        "<doc -a='1'/>",
    ] {
        assert!(Element::parse(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn names_follow_the_xml_name_production() {
    for good in [
        "doc",
        "_x",
        "a-b.c",
        "func:name",
        "элемент",
        "a1",
        "x\u{B7}y",
    ] {
        assert!(is_xml_name(good), "refused {good:?}");
        let doc = format!("<{good} {good}='v'/>");
        assert_eq!(Element::parse(&doc).unwrap().name, good);
    }
    for bad in [
        "", "1a", "-a", ".a", "a b", "a<b", "a>b", "a/b", "a=b", "a'b", "a&b",
    ] {
        assert!(!is_xml_name(bad), "accepted {bad:?}");
    }
}

#[test]
fn a_name_made_in_code_that_is_no_xml_name_is_written_as_one() {
    let doc = Element::new("a<b").attr("c d", "1").child(Element::new(""));
    let text = doc.to_document();
    let back = Element::parse(&text).unwrap();
    assert_eq!(back.name, "a_b");
    assert_eq!(back.get_attr("c_d"), Some("1"));
    assert_eq!(back.elements().next().unwrap().name, "_");
}

#[test]
fn writer_escapes_and_replaces_forbidden_characters() {
    let doc = Element::new("doc")
        .attr("v", "a\"b\n<c>")
        .child(Element::new("t").text("x\u{1}y & </t> ]]>"))
        .child(Element::new("e"));
    let text = doc.to_document();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<doc"));
    let back = Element::parse(&text).unwrap();
    assert_eq!(back.get_attr("v"), Some("a\"b\n<c>"));
    assert_eq!(
        back.find("t").unwrap().text_content(),
        "x\u{FFFD}y & </t> ]]>"
    );
}

#[test]
fn deep_and_wide_documents_are_refused_before_they_are_built() {
    let deep = format!("{}{}", "<a>".repeat(50_000), "</a>".repeat(50_000));
    let e = Element::parse(&deep).unwrap_err();
    assert!(e.0.contains("deeper"), "{e}");
    let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
    let tree = Element::parse(&ok).unwrap();
    assert!(Element::parse(&tree.to_document()).is_ok());
    let wide = format!("<doc>{}</doc>", "<a/>".repeat(MAX_NODES));
    assert!(Element::parse(&wide).unwrap_err().0.contains("nodes"));
    let attrs = format!(
        "<doc {}/>",
        (0..MAX_NODES)
            .map(|i| format!("a{i}=''"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    assert!(Element::parse(&attrs).is_err());
}

#[test]
fn a_deep_tree_built_in_code_writes_and_drops_without_recursion() {
    let mut e = Element::new("a");
    for _ in 0..200_000 {
        e = Element::new("a").child(e);
    }
    assert_eq!(e.to_document().matches("<a>").count(), 200_000);
    drop(e);
}

#[test]
fn cdata_with_terminator_survives() {
    let mut doc = Element::new("doc");
    doc.children.push(Node::CData("a]]>b".into()));
    let back = Element::parse(&doc.to_document()).unwrap();
    assert_eq!(back.text_content(), "a]]>b");
}
