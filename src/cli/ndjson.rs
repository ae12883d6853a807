//! The export file: NDJSON, one JSON object per line (UTF-8, `\n` between lines).
//!
//! ```text
//! {"lucent":"export","format":1,"version":"0.1.0","collections":["users","posts"]}
//! {"collection":"users","doc":{"id":"0192…","email":"ann@example.com","password":"$argon2id$…",…}}
//! {"collection":"posts","doc":{"id":"0193…","title":"Hello","tags":["0191…"],…}}
//! {"lucent":"end","documents":2}
//! ```
//!
//! The header says what wrote the file; the end line says the file is whole (an export cut
//! short, by a full disk or a killed pipe, has none). Both are optional on import, so a
//! hand-written file of document lines imports too. Here: writing those lines, reading lines
//! back with their numbers (a bounded reader: a line longer than the limit is skipped, never
//! held), and parsing one.

use std::io::{self, BufRead};

use serde_json::{Map, Value as Json, json};

use crate::schema::{Collection, Doc, FieldKind};

/// The version of the line format; a file of a later version is refused.
pub const FORMAT: u64 = 1;

/// The first line of an export.
pub fn header(collections: &[&str]) -> String {
    json!({
        "lucent": "export",
        "format": FORMAT,
        "version": env!("CARGO_PKG_VERSION"),
        "collections": collections,
    })
    .to_string()
}

/// The line of one document: every stored field as the database holds it. The object keys of a
/// `json` field are written sorted, at any depth: PostgreSQL does not keep their order (SQLite
/// does), so the same documents give the same file from either engine.
pub fn document(collection: &Collection, mut doc: Doc) -> String {
    for field in &collection.fields {
        if field.kind == FieldKind::Json
            && let Some(value) = doc.get_mut(&field.name)
        {
            sort_keys(value);
        }
    }
    let mut line = Map::with_capacity(2);
    line.insert("collection".into(), Json::String(collection.slug.clone()));
    line.insert("doc".into(), Json::Object(doc));
    Json::Object(line).to_string()
}

/// The last line of an export.
pub fn end(documents: u64) -> String {
    json!({"lucent": "end", "documents": documents}).to_string()
}

fn sort_keys(value: &mut Json) {
    match value {
        Json::Object(map) => {
            let mut entries: Vec<(String, Json)> = std::mem::take(map).into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, mut value) in entries {
                sort_keys(&mut value);
                map.insert(key, value);
            }
        }
        Json::Array(items) => items.iter_mut().for_each(sort_keys),
        Json::Null | Json::Bool(_) | Json::Number(_) | Json::String(_) => {}
    }
}

/// One line of an export file, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Header { format: u64 },
    Document { collection: String, doc: Json },
    End { documents: u64 },
}

/// Parses one line (without its line end).
///
/// # Errors
/// Why the line is not one of an export file.
pub fn parse(line: &[u8]) -> Result<Line, String> {
    let value: Json = serde_json::from_slice(line).map_err(|e| {
        // serde_json says "... at line 1 column 7": the line is the file's, the column this one's.
        let message = e.to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m);
        format!("invalid JSON at column {}: {message}", e.column())
    })?;
    let Json::Object(mut object) = value else {
        return Err("the line must be a JSON object".into());
    };
    let keys = |object: &Map<String, Json>| {
        object
            .keys()
            .map(|k| Json::String(k.clone()).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match object.get("lucent").and_then(Json::as_str) {
        Some("export") => {
            let format = object
                .get("format")
                .and_then(Json::as_u64)
                .ok_or("the header line must have a \"format\" number")?;
            return Ok(Line::Header { format });
        }
        Some("end") => {
            let documents = object
                .get("documents")
                .and_then(Json::as_u64)
                .ok_or("the end line must have a \"documents\" count")?;
            return Ok(Line::End { documents });
        }
        Some(other) => {
            return Err(format!(
                "unknown line kind \"lucent\": {}",
                Json::from(other)
            ));
        }
        None => {}
    }
    let (Some(Json::String(collection)), Some(doc)) =
        (object.remove("collection"), object.remove("doc"))
    else {
        return Err("a document line must be {\"collection\": \"<slug>\", \"doc\": {...}}".into());
    };
    if !object.is_empty() {
        return Err(format!(
            "unknown keys in a document line: {}",
            keys(&object)
        ));
    }
    Ok(Line::Document { collection, doc })
}

/// The lines of a reader, numbered from 1, without their line ends (`\n` or `\r\n`). A line
/// longer than the limit (in bytes, a `\r` ending it included) is skipped as it is read and
/// reported, so memory stays within the limit whatever the input.
#[derive(Debug)]
pub struct Lines<R> {
    reader: R,
    number: u64,
    max: usize,
}

/// A line longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// A line read: its bytes, or [`TooLong`].
pub type Read = Result<Vec<u8>, TooLong>;

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R, max: usize) -> Self {
        Self {
            reader,
            number: 0,
            max,
        }
    }

    /// The next line and its number; `None` at the end.
    ///
    /// # Errors
    /// The reader's.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Read)>> {
        let mut line = Vec::new();
        let mut length = 0usize;
        let mut started = false;
        let mut carriage_return = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if !started {
                    return Ok(None);
                }
                break;
            }
            started = true;
            let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..at], at + 1, true),
                None => (available, available.len(), false),
            };
            length += chunk.len();
            if let Some(&last) = chunk.last() {
                carriage_return = last == b'\r';
            }
            if length <= self.max {
                line.extend_from_slice(chunk);
            } else {
                line = Vec::new();
            }
            self.reader.consume(used);
            if done {
                break;
            }
        }
        self.number += 1;
        if length > self.max {
            return Ok(Some((self.number, Err(TooLong))));
        }
        if carriage_return {
            line.pop();
        }
        Ok(Some((self.number, Ok(line))))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor};

    use super::*;
    use crate::schema::{CollectionAccess, Field};

    type Numbered = Vec<(u64, Result<String, TooLong>)>;

    fn read_all(input: &str, max: usize, buffer: usize) -> Numbered {
        let mut lines = Lines::new(BufReader::with_capacity(buffer, Cursor::new(input)), max);
        let mut all = Vec::new();
        while let Some((number, line)) = lines.next_line().unwrap() {
            all.push((number, line.map(|l| String::from_utf8(l).unwrap())));
        }
        all
    }

    #[test]
    fn lines_are_numbered_and_long_ones_skipped() {
        let ok = |n: u64, s: &str| (n, Ok(s.to_string()));
        let cases: Vec<(&str, Numbered)> = vec![
            ("", vec![]),
            ("a", vec![ok(1, "a")]),
            ("a\n", vec![ok(1, "a")]),
            (
                "a\r\nb\n\nc",
                vec![ok(1, "a"), ok(2, "b"), ok(3, ""), ok(4, "c")],
            ),
            // Longer than 5 bytes: reported; the next line is read as usual.
            ("123456789\nabc\n", vec![(1, Err(TooLong)), ok(2, "abc")]),
            (
                "12345\n1234\r\n123456\r\n",
                vec![ok(1, "12345"), ok(2, "1234"), (3, Err(TooLong))],
            ),
            ("12345\r\n", vec![(1, Err(TooLong))]),
        ];
        // A buffer of 2 bytes makes every line span several reads.
        for buffer in [2, 1024] {
            for (input, expected) in &cases {
                assert_eq!(&read_all(input, 5, buffer), expected, "{input:?}");
            }
        }
    }

    #[test]
    fn lines_parse_or_say_why_not() {
        let cases: Vec<(&str, Result<Line, &str>)> = vec![
            (
                r#"{"lucent":"export","format":1,"version":"0.1.0","collections":[]}"#,
                Ok(Line::Header { format: 1 }),
            ),
            (
                r#"{"lucent":"end","documents":3}"#,
                Ok(Line::End { documents: 3 }),
            ),
            (
                r#"{"collection":"posts","doc":{"id":"a"}}"#,
                Ok(Line::Document {
                    collection: "posts".into(),
                    doc: json!({"id": "a"}),
                }),
            ),
            // The document itself is the validator's to judge.
            (
                r#"{"collection":"posts","doc":7}"#,
                Ok(Line::Document {
                    collection: "posts".into(),
                    doc: json!(7),
                }),
            ),
            (
                r#"{"collection":"posts","doc":"#,
                Err("invalid JSON at column 28: EOF while parsing a value"),
            ),
            ("\u{fffd}", Err("invalid JSON at column 1: expected value")),
            ("[1]", Err("the line must be a JSON object")),
            (r#"{"doc":{}}"#, Err("a document line must be")),
            (
                r#"{"collection":1,"doc":{}}"#,
                Err("a document line must be"),
            ),
            (
                r#"{"collection":"posts","doc":{},"extra":1}"#,
                Err("unknown keys in a document line: \"extra\""),
            ),
            (r#"{"lucent":"export"}"#, Err("the header line must have")),
            (r#"{"lucent":"end"}"#, Err("the end line must have")),
            (r#"{"lucent":"other"}"#, Err("unknown line kind")),
        ];
        for (input, expected) in cases {
            match (parse(input.as_bytes()), expected) {
                (Ok(line), Ok(expected)) => assert_eq!(line, expected, "{input}"),
                (Err(error), Err(expected)) => {
                    assert!(error.starts_with(expected), "{input}: {error}")
                }
                (got, expected) => panic!("{input}: {got:?}, expected {expected:?}"),
            }
        }
        // Bytes that are not UTF-8 are not JSON.
        assert!(parse(b"{\"collection\":\"\xff\"}").is_err());
    }

    #[test]
    fn written_lines_read_back_and_json_keys_are_sorted() {
        let collection = Collection {
            slug: "posts".into(),
            label: "Posts".into(),
            fields: vec![
                Field::new("meta", FieldKind::Json),
                Field::new("title", FieldKind::String),
            ],
            auth: None,
            access: CollectionAccess::default(),
            file: "lucent.toml".into(),
            prefix: String::new(),
        };
        let doc = json!({
            "id": "a",
            "meta": {"b": 1, "a": [{"z": 1, "y": 2}], "c": {"e": null, "d": true}},
            "title": "{\"b\":1,\"a\":2}",
        });
        let line = document(&collection, doc.as_object().unwrap().clone());
        assert_eq!(
            line,
            r#"{"collection":"posts","doc":{"id":"a","meta":{"a":[{"y":2,"z":1}],"b":1,"c":{"d":true,"e":null}},"title":"{\"b\":1,\"a\":2}"}}"#
        );
        assert_eq!(
            parse(line.as_bytes()).unwrap(),
            Line::Document {
                collection: "posts".into(),
                doc
            }
        );
        assert_eq!(
            parse(header(&["posts"]).as_bytes()).unwrap(),
            Line::Header { format: FORMAT }
        );
        assert_eq!(
            parse(end(12).as_bytes()).unwrap(),
            Line::End { documents: 12 }
        );
    }
}
