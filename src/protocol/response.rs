//! What a panel function answers, and how that becomes the one document on
//! stdout.
//!
//! # Format
//!
//! The answer is the incoming document (metadata, messages and attributes
//! kept) with the data appended:
//!
//! ```text
//! list      <doc ...><elem><id>42</id><status>status_error</status></elem>...
//!             <p_elems>120</p_elems><p_num>2</p_num><p_cnt>5</p_cnt>
//!             <p_sort>cdate</p_sort><p_order>desc</p_order></doc>
//! form      <doc ...><elid>42</elid><comment>..</comment>
//!             <slist name="intname"><val key="open">Open</val></slist></doc>
//! ok        <doc ...><ok/></doc>
//! redirect  <doc ...><ok type="form">func=runningoperation&amp;elid=4</ok></doc>
//! error     <doc ...><error type="missed" object="runningoperation" lang="en">
//!             <param name="object">runningoperation</param>
//!             <param name="value">7</param><msg>..localized..</msg></error></doc>
//! ```
//!
//! Nothing is written until the whole document is built, so a failure can
//! never leave half a document on stdout.

use super::error::PanelError;
use super::messages::{self, Lang};
use super::request::Paging;
use crate::xml::{Element, Markup, Node};

/// One list row: cells in column order, and an optional row colour.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub cells: Vec<(&'static str, String)>,
    pub color: Option<&'static str>,
}

impl Row {
    pub fn cell(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.cells.push((name, value.into()));
        self
    }
}

/// A page of a list, with the total number of rows the list has.
#[derive(Clone, Debug, PartialEq)]
pub struct ListPage {
    pub rows: Vec<Row>,
    pub total: u64,
    pub paging: Paging,
}

/// A select's options: `(key, label)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Slist {
    pub name: &'static str,
    pub options: Vec<(String, String)>,
}

/// A form's values and its selects' options.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Form {
    pub values: Vec<(&'static str, String)>,
    pub slists: Vec<Slist>,
}

/// Where a redirect goes (`<ok type=..>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectKind {
    Form,
    List,
    Top,
    Url,
    Blank,
}

impl RedirectKind {
    fn as_str(self) -> &'static str {
        match self {
            RedirectKind::Form => "form",
            RedirectKind::List => "list",
            RedirectKind::Top => "top",
            RedirectKind::Url => "url",
            RedirectKind::Blank => "blank",
        }
    }
}

/// What a panel function answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    List(ListPage),
    Form(Form),
    Ok,
    Redirect(RedirectKind, String),
}

/// The children this module owns; removed from the incoming document
/// before the answer is appended so that nothing is doubled.
const ANSWER_CHILDREN: &[&str] = &[
    "elem", "p_elems", "p_num", "p_cnt", "p_sort", "p_order", "ok", "error",
];

/// The base of every answer: the incoming document, or a fresh `<doc>`.
fn base(doc: Option<Element>, func: &str, lang: Lang) -> Element {
    let mut out = doc.unwrap_or_else(|| Element::new("doc"));
    if out.name != "doc" {
        out = Element::new("doc");
    }
    for name in ANSWER_CHILDREN {
        out.remove_all(name);
    }
    if !func.is_empty() {
        out.set_attr("func", func);
    }
    out.set_attr("lang", lang.code());
    out
}

fn value(name: &str, text: &str) -> Element {
    Element::new(name).text(text)
}

/// Renders a successful answer.
pub fn render(doc: Option<Element>, func: &str, lang: Lang, reply: &Reply) -> Element {
    let mut out = base(doc, func, lang);
    match reply {
        Reply::List(page) => {
            // Thousands of rows: written as text, not as a tree.
            let mut rows = Markup::default();
            for row in &page.rows {
                let color = row.color.map(|c| ("color", c));
                rows.element(
                    "elem",
                    color.as_slice(),
                    row.cells.iter().map(|(name, v)| (*name, v.as_str())),
                );
            }
            out.children.push(Node::Markup(rows));
            out.push(value("p_elems", &page.total.to_string()));
            let p = &page.paging;
            if p.whole {
                // Every row: the panel pages and sorts; what it asked is
                // echoed as it asked it.
                for name in ["p_num", "p_cnt"] {
                    if p.given.contains(&name) {
                        let v = if name == "p_num" { p.page } else { p.count };
                        out.push(value(name, &v.to_string()));
                    }
                }
                if let Some(sort) = &p.sort {
                    out.push(value("p_sort", sort));
                    out.push(value("p_order", if p.descending { "desc" } else { "asc" }));
                }
                return out;
            }
            out.push(value("p_num", &page.paging.page.to_string()));
            out.push(value("p_cnt", &page.paging.count.to_string()));
            if let Some(sort) = &page.paging.sort {
                out.push(value("p_sort", sort));
                out.push(value(
                    "p_order",
                    if page.paging.descending {
                        "desc"
                    } else {
                        "asc"
                    },
                ));
            }
        }
        Reply::Form(form) => {
            for (name, v) in &form.values {
                out.remove_all(name);
                out.push(value(name, v));
            }
            for slist in &form.slists {
                let mut el = Element::new("slist").attr("name", slist.name);
                for (key, label) in &slist.options {
                    el.push(
                        Element::new("val")
                            .attr("key", key.as_str())
                            .text(label.as_str()),
                    );
                }
                out.push(el);
            }
        }
        Reply::Ok => out.push(Element::new("ok")),
        Reply::Redirect(kind, target) => out.push(
            Element::new("ok")
                .attr("type", kind.as_str())
                .text(target.as_str()),
        ),
    }
    out
}

/// Renders a typed error with its localized message.
pub fn render_error(doc: Option<Element>, func: &str, lang: Lang, error: &PanelError) -> Element {
    let mut out = base(doc, func, lang);
    let kind = error.kind.as_str();
    let text = messages::error_text(lang, kind, &error.object, &error.value);
    out.push(
        Element::new("error")
            .attr("type", kind)
            .attr("object", error.object.as_str())
            .attr("lang", lang.code())
            .child(
                Element::new("param")
                    .attr("name", "object")
                    .text(error.object.as_str()),
            )
            .child(
                Element::new("param")
                    .attr("name", "value")
                    .text(error.value.as_str()),
            )
            .child(Element::new("msg").text(text)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::error::ErrorKind;

    fn paging() -> Paging {
        Paging {
            page: 2,
            count: 5,
            sort: Some("id".into()),
            descending: true,
            whole: false,
            given: Vec::new(),
        }
    }

    #[test]
    fn list_keeps_the_incoming_document_and_appends_rows() {
        let incoming = Element::parse(
            r#"<doc func="runningoperation" binary="/billmgr"><metadata name="runningoperation" type="list"/><messages name="runningoperation"><msg name="title">T</msg></messages><elem><id>stale</id></elem></doc>"#,
        )
        .unwrap();
        let reply = Reply::List(ListPage {
            rows: vec![Row {
                color: Some("red"),
                ..Row::default()
            }
            .cell("id", "7")
            .cell("desc", "a<b \u{1}&")],
            total: 11,
            paging: paging(),
        });
        let out = render(Some(incoming), "runningoperation", Lang::En, &reply);
        let out = Element::parse(&out.to_document()).unwrap();
        assert_eq!(out.get_attr("binary"), Some("/billmgr"));
        assert!(out.find("metadata").is_some() && out.find("messages").is_some());
        let elems: Vec<_> = out.find_all("elem").collect();
        assert_eq!(elems.len(), 1);
        assert_eq!(
            elems[0].find("desc").unwrap().text_content(),
            "a<b \u{FFFD}&"
        );
        assert_eq!(elems[0].get_attr("color"), Some("red"));
        assert_eq!(out.find("p_elems").unwrap().text_content(), "11");
        assert_eq!(out.find("p_order").unwrap().text_content(), "desc");
    }

    #[test]
    fn form_slist_ok_and_redirect() {
        let form = Form {
            values: vec![("comment", "x".into())],
            slists: vec![Slist {
                name: "intname",
                options: vec![("open".into(), "Open".into())],
            }],
        };
        let out = render(None, "f", Lang::Ru, &Reply::Form(form));
        assert_eq!(out.get_attr("lang"), Some("ru"));
        let slist = out.find("slist").unwrap();
        assert_eq!(slist.get_attr("name"), Some("intname"));
        assert_eq!(slist.find("val").unwrap().get_attr("key"), Some("open"));

        let out = render(None, "f", Lang::En, &Reply::Ok);
        assert!(out.find("ok").unwrap().attrs.is_empty());
        let out = render(
            None,
            "f",
            Lang::En,
            &Reply::Redirect(RedirectKind::List, "func=x".into()),
        );
        let ok = out.find("ok").unwrap();
        assert_eq!(
            (ok.get_attr("type"), ok.text_content().as_str()),
            (Some("list"), "func=x")
        );
    }

    #[test]
    fn error_is_typed_and_localized_in_both_languages() {
        let e = PanelError::new(ErrorKind::Missed, "runningoperation", "7");
        for lang in Lang::ALL {
            let out = render_error(None, "f", *lang, &e);
            let err = out.find("error").unwrap();
            assert_eq!(err.get_attr("type"), Some("missed"));
            assert_eq!(err.get_attr("object"), Some("runningoperation"));
            assert_eq!(err.get_attr("lang"), Some(lang.code()));
            let text = err.find("msg").unwrap().text_content();
            assert!(text.contains('7'), "{text}");
            assert!(!text.contains("__"), "{text}");
        }
    }
}
