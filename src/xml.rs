//! The one XML writer haven uses (agent meta-data, the CIB, cluster.conf):
//! quick-xml's `Writer` does the markup and the escaping; this module adds
//! the line layout haven's documents share (one element per line, a fixed
//! indent per level) and the two things quick-xml leaves to its caller:
//! whitespace in attribute values and text that may not appear in a
//! comment.

use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::Writer;
use std::borrow::Cow;

/// A document being written, line by line.
pub struct Xml {
    w: Writer<Vec<u8>>,
    /// Spaces per level of nesting (0: every line starts at the margin).
    indent: usize,
    depth: usize,
}

/// An attribute value as quick-xml escapes it (`& < > " '`), with tab,
/// newline and carriage return written as character references: XML's
/// attribute-value normalization turns them into spaces otherwise, and a
/// value would not come back as it was written.
fn attribute_value(v: &str) -> Cow<'_, [u8]> {
    let escaped = quick_xml::escape::escape(v);
    if !escaped.contains(['\t', '\n', '\r']) {
        return match escaped {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        };
    }
    let mut out = String::with_capacity(escaped.len() + 8);
    for c in escaped.chars() {
        match c {
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out.into_bytes())
}

/// Comment text that cannot end the comment early: XML forbids `--`
/// inside a comment and a `-` just before its end, so every `-` that
/// follows another is separated from it by a space.
fn comment_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    let mut dash = false;
    for c in text.chars() {
        if c == '-' && dash {
            out.push(' ');
        }
        dash = c == '-';
        out.push(c);
    }
    out.push(' ');
    out
}

/// Whether text can be written in an XML 1.0 document at all: control
/// characters other than tab, newline and carriage return cannot, not even
/// as character references.
pub fn representable(text: &str) -> bool {
    !text.chars().any(|c| (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}'))
}

/// An XML Name without a colon (NCName), restricted to ASCII: what an
/// element or attribute name, and an ID, may be.
pub fn is_ncname(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn start<'a>(tag: &'a str, attrs: &[(&'a str, &'a str)]) -> BytesStart<'a> {
    let mut e = BytesStart::new(tag);
    for (k, v) in attrs {
        e.push_attribute(Attribute { key: QName(k.as_bytes()), value: attribute_value(v) });
    }
    e
}

impl Xml {
    /// A document whose nested lines are indented by `indent` spaces per level.
    pub fn new(indent: usize) -> Xml {
        Xml { w: Writer::new(Vec::with_capacity(16384)), indent, depth: 0 }
    }

    /// Writing to a Vec cannot fail; the io::Result quick-xml returns is
    /// for writers that can.
    fn event(&mut self, e: Event<'_>) {
        let _ = self.w.write_event(e);
    }

    fn margin(&mut self) {
        let n = self.depth * self.indent;
        self.w.get_mut().extend(std::iter::repeat_n(b' ', n));
    }

    fn newline(&mut self) {
        self.w.get_mut().push(b'\n');
    }

    /// `<?xml version="1.0"?>`
    pub fn declaration(&mut self) {
        self.event(Event::Decl(BytesDecl::new("1.0", None, None)));
        self.newline();
    }

    /// `<!DOCTYPE ...>` with `text` after the keyword (a constant).
    pub fn doctype(&mut self, text: &str) {
        self.event(Event::DocType(BytesText::from_escaped(text)));
        self.newline();
    }

    /// `<!-- text -->` on a line of its own.
    pub fn comment(&mut self, text: &str) {
        self.margin();
        self.event(Event::Comment(BytesText::from_escaped(comment_text(text))));
        self.newline();
    }

    /// `<tag a="v"...>`; the following lines are one level deeper.
    pub fn open(&mut self, tag: &str, attrs: &[(&str, &str)]) {
        self.margin();
        self.event(Event::Start(start(tag, attrs)));
        self.newline();
        self.depth += 1;
    }

    /// `</tag>`, one level up.
    pub fn close(&mut self, tag: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.margin();
        self.event(Event::End(BytesEnd::new(tag)));
        self.newline();
    }

    /// `<tag a="v"/>`
    pub fn empty(&mut self, tag: &str, attrs: &[(&str, &str)]) {
        self.margin();
        self.event(Event::Empty(start(tag, attrs)));
        self.newline();
    }

    /// `<tag a="v">text</tag>` on one line (the text may hold newlines).
    pub fn text(&mut self, tag: &str, attrs: &[(&str, &str)], text: &str) {
        self.margin();
        self.event(Event::Start(start(tag, attrs)));
        self.event(Event::Text(BytesText::new(text)));
        self.event(Event::End(BytesEnd::new(tag)));
        self.newline();
    }

    /// The document. quick-xml writes only what it was given as `&str`,
    /// so the bytes are UTF-8.
    pub fn finish(self) -> String {
        String::from_utf8(self.w.into_inner()).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_keep_every_character() {
        let mut x = Xml::new(2);
        x.open("a", &[("v", "x<y>&\"z\"'\ttab\nline\r")]);
        x.empty("b", &[("n", "plain")]);
        x.close("a");
        assert_eq!(
            x.finish(),
            "<a v=\"x&lt;y&gt;&amp;&quot;z&quot;&apos;&#9;tab&#10;line&#13;\">\n  <b n=\"plain\"/>\n</a>\n"
        );
    }

    #[test]
    fn comments_cannot_end_early() {
        for text in ["web---v2.toml", "a--b", "ends-", "--", "-->"] {
            let mut x = Xml::new(0);
            x.comment(text);
            let out = x.finish();
            let inner = out.trim_end().strip_prefix("<!--").and_then(|s| s.strip_suffix("-->")).unwrap();
            assert!(!inner.contains("--") && !inner.ends_with('-'), "{text:?} -> {out:?}");
        }
    }

    #[test]
    fn text_and_declarations() {
        let mut x = Xml::new(0);
        x.declaration();
        x.doctype("resource-agent SYSTEM \"ra-api-1.dtd\"");
        x.text("d", &[("lang", "en")], "\na & b 'c'\n");
        assert_eq!(
            x.finish(),
            "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n<d lang=\"en\">\na &amp; b &apos;c&apos;\n</d>\n"
        );
    }

    #[test]
    fn names_and_characters() {
        assert!(is_ncname("no-quorum-policy") && is_ncname("_a.b"));
        assert!(!is_ncname("bad name") && !is_ncname("1a") && !is_ncname("a:b") && !is_ncname(""));
        assert!(representable("a\tb\nc") && !representable("a\u{1}b"));
    }
}
