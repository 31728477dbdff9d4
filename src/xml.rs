//! A small owned XML tree over quick-xml: parse a whole document, change it,
//! write it back.
//!
//! The panel hands a handler an opaque document and expects the same document
//! back with data appended, so the tree keeps what it does not understand
//! (comments, CDATA, unknown children) in order. Writing always produces a
//! well-formed UTF-8 document: characters that XML 1.0 forbids even when
//! escaped (most C0 controls, which do occur in billing data) are replaced by
//! U+FFFD, so no database value can break the document.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// A node of the tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Element(Element),
    Text(String),
    CData(String),
    Comment(String),
    /// Elements written by [`Markup`], sent as they are.
    Markup(Markup),
}

/// Elements already written as text: a list of thousands of rows costs
/// one string instead of an element, a name and a text per cell. Only
/// this module writes it (the field is private), so it is always
/// well-formed: whole elements, names from the program, values escaped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Markup(String);

impl Markup {
    /// Appends `<name attrs...><child>text</child>...</name>`.
    pub fn element<'a>(
        &mut self,
        name: &'static str,
        attrs: &[(&'static str, &str)],
        children: impl IntoIterator<Item = (&'static str, &'a str)>,
    ) {
        debug_assert!(is_name(name));
        let out = &mut self.0;
        debug_assert!(attrs.iter().all(|(a, _)| is_name(a)));
        push_start(out, name, attrs.iter().copied());
        out.c('>');
        for (child, text) in children {
            debug_assert!(is_name(child));
            push_start(out, child, std::iter::empty());
            out.c('>');
            push_escaped(out, text, false);
            push_end(out, child);
        }
        push_end(out, name);
    }
}

/// A name as the program writes them: ASCII letters, digits, `_`, `-`
/// and `.`, starting with a letter or `_`.
fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// An element with its attributes in document order and its children.
#[derive(Clone, Debug, PartialEq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

/// The deepest nesting a document may have. Panel documents are a few
/// levels deep; the bound is checked while parsing, before anything
/// deeper is built.
pub const MAX_DEPTH: usize = 256;
/// The most nodes (elements, attributes, text, CDATA and comments) a
/// document may have: with the 16 MiB limit on its size, this keeps a
/// parsed document within a few tens of megabytes.
pub const MAX_NODES: usize = 100_000;

/// Why a document could not be parsed; the message is for the log.
#[derive(Debug, thiserror::Error)]
#[error("invalid XML: {0}")]
pub struct ParseError(pub String);

impl Element {
    pub fn new(name: &str) -> Self {
        Element {
            name: name.to_string(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// (chainable) Sets an attribute, replacing an existing one of that name.
    pub fn attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// (chainable) Appends a text child.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// (chainable) Appends a child element.
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name.to_string(), value)),
        }
    }

    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn push(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    /// Child elements, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The first child element with this name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// All child elements with this name.
    pub fn find_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.name == name)
    }

    /// Removes every child element with this name.
    pub fn remove_all(&mut self, name: &str) {
        self.children
            .retain(|n| !matches!(n, Node::Element(e) if e.name == name));
    }

    /// The concatenated text and CDATA directly inside this element.
    pub fn text_content(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            match n {
                Node::Text(t) | Node::CData(t) => out.push_str(t),
                _ => {}
            }
        }
        out
    }

    /// Parses a complete document: one root element, optionally preceded by
    /// an XML declaration, comments or processing instructions.
    pub fn parse(input: &str) -> Result<Element, ParseError> {
        let mut reader = Reader::from_str(input);
        reader.config_mut().check_end_names = true;
        reader.config_mut().check_comments = true;
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        let mut nodes = 0usize;
        loop {
            let event = reader
                .read_event()
                .map_err(|e| ParseError(format!("{e} at byte {}", reader.error_position())))?;
            if !matches!(event, Event::End(_) | Event::Eof) {
                nodes += 1;
            }
            if nodes > MAX_NODES {
                return Err(ParseError(format!("more than {MAX_NODES} nodes")));
            }
            match event {
                Event::Start(start) => {
                    if root.is_some() {
                        return Err(ParseError("more than one root element".into()));
                    }
                    if stack.len() >= MAX_DEPTH {
                        return Err(ParseError(format!("nested deeper than {MAX_DEPTH} levels")));
                    }
                    let el = element_from(&start)?;
                    nodes += el.attrs.len();
                    stack.push(el);
                }
                Event::Empty(start) => {
                    if root.is_some() {
                        return Err(ParseError("more than one root element".into()));
                    }
                    let el = element_from(&start)?;
                    nodes += el.attrs.len();
                    match stack.last_mut() {
                        Some(parent) => parent.push(el),
                        None => root = Some(el),
                    }
                }
                Event::End(_) => {
                    let el = stack
                        .pop()
                        .ok_or_else(|| ParseError("closing tag without opening tag".into()))?;
                    match stack.last_mut() {
                        Some(parent) => parent.push(el),
                        None => root = Some(el),
                    }
                }
                Event::Text(text) => {
                    let text = text.xml10_content();
                    match stack.last_mut() {
                        Some(parent) => push_text(parent, &text),
                        None if text.trim().is_empty() => {}
                        None => return Err(ParseError("text outside the root element".into())),
                    }
                }
                Event::GeneralRef(reference) => {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => quick_xml::escape::resolve_predefined_entity(&reference)
                            .ok_or_else(|| ParseError(format!("unknown entity &{};", &*reference)))?
                            .to_string(),
                        Err(e) => return Err(ParseError(e.to_string())),
                    };
                    match stack.last_mut() {
                        Some(parent) => push_text(parent, &resolved),
                        None => {
                            return Err(ParseError("reference outside the root element".into()))
                        }
                    }
                }
                Event::CData(data) => {
                    let data = data.into_inner().into_owned();
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::CData(data)),
                        None => return Err(ParseError("CDATA outside the root element".into())),
                    }
                }
                Event::Comment(comment) => {
                    if let Some(parent) = stack.last_mut() {
                        parent
                            .children
                            .push(Node::Comment(comment.into_inner().into_owned()));
                    }
                }
                Event::DocType(_) => {
                    // An internal subset could declare entities; the panel never
                    // sends one, so refusing it closes the entity-expansion door.
                    return Err(ParseError("DOCTYPE is not accepted".into()));
                }
                Event::Decl(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err(ParseError(format!(
                "unexpected end of document inside <{}>",
                stack.last().map(|e| e.name.as_str()).unwrap_or_default()
            )));
        }
        root.ok_or_else(|| ParseError("no root element".into()))
    }

    /// The whole document: XML declaration, a newline, the root element.
    pub fn to_document(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.write_to(&mut out);
        out.c('\n');
        out
    }

    /// [`Element::to_document`] written straight to `w` (no copy of the
    /// whole text in memory).
    pub fn write_document(&self, w: impl std::io::Write) -> std::io::Result<()> {
        let mut out = IoOut { w, err: None };
        out.s("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.write_to(&mut out);
        out.c('\n');
        match out.err {
            Some(e) => Err(e),
            None => out.w.flush(),
        }
    }

    /// Writes the tree without recursion (a deep tree cannot exhaust
    /// the stack).
    fn write_to(&self, out: &mut impl Out) {
        enum Step<'a> {
            Open(&'a Element),
            Node(&'a Node),
            Close(&'a str),
        }
        let mut steps = vec![Step::Open(self)];
        while let Some(step) = steps.pop() {
            match step {
                Step::Open(e) => {
                    push_start(
                        out,
                        &e.name,
                        e.attrs.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                    );
                    if e.children.is_empty() {
                        out.s("/>");
                    } else {
                        out.c('>');
                        steps.push(Step::Close(&e.name));
                        steps.extend(e.children.iter().rev().map(Step::Node));
                    }
                }
                Step::Close(name) => push_end(out, name),
                Step::Node(Node::Element(e)) => steps.push(Step::Open(e)),
                Step::Node(Node::Text(t)) => push_escaped(out, t, false),
                Step::Node(Node::Markup(m)) => out.s(&m.0),
                Step::Node(Node::CData(t)) => {
                    // "]]>" cannot appear inside CDATA; split it across two sections.
                    out.s("<![CDATA[");
                    out.s(&sanitize(t).replace("]]>", "]]]]><![CDATA[>"));
                    out.s("]]>");
                }
                Step::Node(Node::Comment(t)) => {
                    out.s("<!--");
                    out.s(&sanitize(t).replace("--", "- -"));
                    out.s("-->");
                }
            }
        }
    }
}

/// Dropping a tree without recursion.
impl Drop for Element {
    fn drop(&mut self) {
        let mut pending = std::mem::take(&mut self.children);
        while let Some(node) = pending.pop() {
            if let Node::Element(mut e) = node {
                pending.append(&mut e.children);
            }
        }
    }
}

fn element_from(start: &BytesStart<'_>) -> Result<Element, ParseError> {
    let name = start.name();
    let name: &str = name.as_ref();
    if !is_xml_name(name) {
        return Err(ParseError(format!("{name:?} is not an element name")));
    }
    let mut el = Element::new(name);
    for attr in start.attributes().with_checks(true) {
        let attr = attr.map_err(|e| ParseError(e.to_string()))?;
        let key: &str = attr.key.as_ref();
        if !is_xml_name(key) {
            return Err(ParseError(format!("{key:?} is not an attribute name")));
        }
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| ParseError(e.to_string()))?;
        el.attrs
            .push((attr.key.as_ref().to_string(), value.into_owned()));
    }
    Ok(el)
}

/// XML 1.0's `Name` production (fifth edition, 2.3): what a start or end
/// tag and an attribute may be called. quick-xml splits tags at
/// whitespace and `>` only, so `< />` or `<a<b>` would otherwise read as
/// an element named "" or "a<b", and be written back as no document.
pub(crate) fn is_xml_name(name: &str) -> bool {
    fn start(c: char) -> bool {
        matches!(c,
            ':' | 'A'..='Z' | '_' | 'a'..='z'
            | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
            | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
            | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
            | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
    }
    fn rest(c: char) -> bool {
        start(c)
            || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}'
                | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
    }
    let mut chars = name.chars();
    chars.next().is_some_and(start) && chars.all(rest)
}

/// A name as it may be written: itself when it is an XML name, otherwise
/// with `_` for every character that may not stand where it does. Names
/// read from a document are always XML names ([`Element::parse`]); the
/// program's own are too. This keeps any other from making a document no
/// parser accepts.
fn writable_name(name: &str) -> std::borrow::Cow<'_, str> {
    if is_xml_name(name) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len().max(1));
    for c in name.chars() {
        let fits = if out.is_empty() {
            is_xml_name(&c.to_string())
        } else {
            is_xml_name(&format!("a{c}"))
        };
        out.push(if fits { c } else { '_' });
    }
    if out.is_empty() {
        out.push('_');
    }
    std::borrow::Cow::Owned(out)
}

/// Appends text, merging with a preceding text node (entity references
/// arrive as separate events).
fn push_text(parent: &mut Element, text: &str) {
    if let Some(Node::Text(prev)) = parent.children.last_mut() {
        prev.push_str(text);
    } else {
        parent.children.push(Node::Text(text.to_string()));
    }
}

/// Where the writer puts text: a string, or a stream.
trait Out {
    fn s(&mut self, s: &str);
    fn c(&mut self, c: char) {
        self.s(c.encode_utf8(&mut [0; 4]));
    }
}

impl Out for String {
    fn s(&mut self, s: &str) {
        self.push_str(s);
    }
}

/// A stream; the first error stops the writing and is kept.
struct IoOut<W> {
    w: W,
    err: Option<std::io::Error>,
}

impl<W: std::io::Write> Out for IoOut<W> {
    fn s(&mut self, s: &str) {
        if self.err.is_none() {
            if let Err(e) = self.w.write_all(s.as_bytes()) {
                self.err = Some(e);
            }
        }
    }
}

/// Is this character allowed in an XML 1.0 document?
fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn sanitize(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().all(is_xml_char) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(
            s.chars()
                .map(|c| if is_xml_char(c) { c } else { '\u{FFFD}' })
                .collect(),
        )
    }
}

/// `<name attr="value"...`, the tag left open (`>` or `/>` follows).
fn push_start<'a>(out: &mut impl Out, name: &str, attrs: impl Iterator<Item = (&'a str, &'a str)>) {
    out.c('<');
    out.s(&writable_name(name));
    for (attr, value) in attrs {
        out.c(' ');
        out.s(&writable_name(attr));
        out.s("=\"");
        push_escaped(out, value, true);
        out.c('"');
    }
}

/// `</name>`.
fn push_end(out: &mut impl Out, name: &str) {
    out.s("</");
    out.s(&writable_name(name));
    out.c('>');
}

fn push_escaped(out: &mut impl Out, s: &str, attribute: bool) {
    // Runs that need nothing go out as one slice: a list of thousands of
    // rows is megabytes of text.
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let replacement = match c {
            '<' => "&lt;",
            '>' => "&gt;",
            '&' => "&amp;",
            '"' if attribute => "&quot;",
            // Attribute values are normalised by parsers; keep line breaks.
            '\n' if attribute => "&#10;",
            '\r' => "&#13;",
            '\t' if attribute => "&#9;",
            c if is_xml_char(c) => continue,
            _ => "\u{FFFD}",
        };
        out.s(&s[start..i]);
        out.s(replacement);
        start = i + c.len_utf8();
    }
    out.s(&s[start..]);
}

#[cfg(test)]
mod tests;
