//! `lucent types --lang ts [--out FILE]`: TypeScript types for every collection, like Payload's
//! `generate:types`. They are the OpenAPI document's schemas rendered as TypeScript, so a type
//! says what the API answers and takes, no more and no less: a document (hidden fields absent,
//! fields a `read` rule can withhold optional), the same cut by `select`, the create and update
//! bodies (hidden fields present and marked write-only, as the OpenAPI document marks them), a
//! list page, `select` options as unions of string literals, relation ids as strings, and what
//! `expand` adds (`doc.expand`: related documents by relation name).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use serde_json::{Map, Value as Json};

use crate::config::Config;

/// The languages `lucent types` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// TypeScript.
    Ts,
}

/// The types of one collection, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A document as answers show it.
    Document,
    /// A document as `select` leaves it.
    Selected,
    Create,
    Update,
    /// One page of a list.
    Page,
    /// What `expand` puts in a document's `expand`.
    Expand,
}

impl Shape {
    const ALL: [Shape; 6] = [
        Shape::Document,
        Shape::Selected,
        Shape::Create,
        Shape::Update,
        Shape::Page,
        Shape::Expand,
    ];

    /// The OpenAPI component (`http::openapi`) this shape is rendered from.
    fn component(self, slug: &str) -> String {
        match self {
            Shape::Document => slug.to_string(),
            Shape::Selected => format!("{slug}Selected"),
            Shape::Create => format!("{slug}Create"),
            Shape::Update => format!("{slug}Update"),
            Shape::Page => format!("{slug}Page"),
            Shape::Expand => format!("{slug}Expand"),
        }
    }

    fn type_name(self, base: &str) -> String {
        match self {
            Shape::Document => base.to_string(),
            Shape::Selected => format!("{base}Selected"),
            Shape::Create => format!("{base}Create"),
            Shape::Update => format!("{base}Update"),
            Shape::Page => format!("{base}Page"),
            Shape::Expand => format!("{base}Expand"),
        }
    }

    /// The key of the shape in `LucentCollections`.
    fn key(self) -> &'static str {
        match self {
            Shape::Document => "document",
            Shape::Selected => "selected",
            Shape::Create => "create",
            Shape::Update => "update",
            Shape::Page => "page",
            Shape::Expand => "expand",
        }
    }

    fn summary(self, label: &str) -> String {
        match self {
            Shape::Document => format!("{label}: a document as answers show it."),
            Shape::Selected => {
                format!("{label}: a document as `select` leaves it (only `id` is sure).")
            }
            Shape::Create => format!("{label}: the body that creates a document."),
            Shape::Update => format!(
                "{label}: the body that changes a document (`null` clears a field that is not required)."
            ),
            Shape::Page => format!("{label}: one page of a list."),
            Shape::Expand => format!(
                "{label}: the related documents `expand` adds to a document (`doc.expand`)."
            ),
        }
    }
}

/// Names the generated file declares besides the collections' own.
const FIXED_NAMES: [&str; 3] = ["LucentJson", "LucentError", "LucentCollections"];

/// Runs `lucent types`.
pub fn run(config: &Config, lang: Lang, out: Option<PathBuf>) -> ExitCode {
    let Lang::Ts = lang;
    let text = match typescript(config) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("lucent: {e}");
            return ExitCode::FAILURE;
        }
    };
    match out {
        Some(path) => match std::fs::write(&path, text) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("lucent: cannot write {}: {e}", path.display());
                ExitCode::FAILURE
            }
        },
        None => {
            // A closed pipe (`lucent types --lang ts | head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
            ExitCode::SUCCESS
        }
    }
}

/// `posts` → `Posts`, `blog-posts` and `blog_posts` → `BlogPosts`.
fn pascal_case(slug: &str) -> String {
    slug.split(['-', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The TypeScript file for `config`.
///
/// # Errors
/// When two collections (or a collection and a fixed name) would give the same type name.
pub fn typescript(config: &Config) -> Result<String, String> {
    let document = crate::http::openapi_document(config);
    let components = document["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    // Component name → TypeScript name, for `$ref`s; and every name once.
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut taken: BTreeMap<String, String> = FIXED_NAMES
        .iter()
        .map(|name| (name.to_string(), format!("Lucent's own `{name}`")))
        .collect();
    names.insert("Error".into(), "LucentError".into());
    for collection in &config.schema.collections {
        let base = pascal_case(&collection.slug);
        for shape in Shape::ALL {
            let name = shape.type_name(&base);
            let owner = format!("collection `{}`", collection.slug);
            if let Some(other) = taken.insert(name.clone(), owner.clone()) {
                return Err(format!(
                    "{owner} and {other} both give the TypeScript name `{name}`: rename one (`slug`)"
                ));
            }
            names.insert(shape.component(&collection.slug), name);
        }
    }
    let render = Renderer {
        names: &names,
        components: &components,
    };

    let mut out = String::new();
    out.push_str(
        "// Generated by `lucent types --lang ts` from the collections of lucent.toml: do not edit,\n\
         // run the command again when the config changes. The types are the OpenAPI document's\n\
         // schemas (`/api/openapi.json`) as TypeScript.\n\n",
    );
    out.push_str(
        "/** Any JSON value (a `json` field). */\n\
         export type LucentJson =\n  | string\n  | number\n  | boolean\n  | null\n  | LucentJson[]\n  | { [key: string]: LucentJson };\n\n",
    );
    out.push_str("/** The body of every error answer. */\n");
    out.push_str(&render.declaration("LucentError", "Error")?);
    for collection in &config.schema.collections {
        let base = pascal_case(&collection.slug);
        for shape in Shape::ALL {
            let component = shape.component(&collection.slug);
            let _ = writeln!(out, "/** {} */", jsdoc(&shape.summary(&collection.label)));
            out.push_str(&render.declaration(&shape.type_name(&base), &component)?);
        }
    }
    out.push_str("/** Every collection's types, by slug: for generic clients. */\n");
    out.push_str("export interface LucentCollections {\n");
    for collection in &config.schema.collections {
        let base = pascal_case(&collection.slug);
        let _ = writeln!(out, "  {}: {{", property_name(&collection.slug));
        for shape in Shape::ALL {
            let _ = writeln!(out, "    {}: {};", shape.key(), shape.type_name(&base));
        }
        out.push_str("  };\n");
    }
    out.push_str("}\n");
    Ok(out)
}

struct Renderer<'a> {
    /// Component name → TypeScript name.
    names: &'a BTreeMap<String, String>,
    components: &'a Map<String, Json>,
}

impl Renderer<'_> {
    /// `export interface Name { ... }` (or `export type Name = ...` for a schema that is not an
    /// object) for the component `component`.
    fn declaration(&self, name: &str, component: &str) -> Result<String, String> {
        let schema = self
            .components
            .get(component)
            .ok_or_else(|| format!("the OpenAPI document has no schema `{component}`"))?;
        Ok(if schema.get("properties").is_some() {
            format!("export interface {name} {}\n\n", self.object(schema, 0))
        } else {
            format!("export type {name} = {};\n\n", self.value(schema, 0))
        })
    }

    /// An object type with a line per property.
    fn object(&self, schema: &Json, depth: usize) -> String {
        let indent = "  ".repeat(depth + 1);
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .collect();
        let mut out = String::from("{\n");
        for (key, property) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(doc) = property_doc(property) {
                let _ = writeln!(out, "{indent}/** {} */", jsdoc(&doc));
            }
            let readonly = if property["readOnly"] == Json::Bool(true) {
                "readonly "
            } else {
                ""
            };
            let optional = if required.contains(&key.as_str()) {
                ""
            } else {
                "?"
            };
            let _ = writeln!(
                out,
                "{indent}{readonly}{}{optional}: {};",
                property_name(key),
                self.value(property, depth + 1)
            );
        }
        out.push_str(&"  ".repeat(depth));
        out.push('}');
        out
    }

    /// The TypeScript type of a value schema.
    fn value(&self, schema: &Json, depth: usize) -> String {
        if let Some(target) = schema["$ref"].as_str() {
            let component = target.rsplit('/').next().unwrap_or_default();
            return self
                .names
                .get(component)
                .cloned()
                .unwrap_or_else(|| "unknown".into());
        }
        let nullable = schema["nullable"] == Json::Bool(true);
        let base = if let Some(values) = schema["enum"].as_array() {
            let mut literals: Vec<String> = values
                .iter()
                .filter(|v| !v.is_null())
                .map(Json::to_string)
                .collect();
            if values.iter().any(Json::is_null) || nullable {
                literals.push("null".into());
            }
            return literals.join(" | ");
        } else if schema.get("anyOf").is_some() {
            // A required `json` field: any value but `null`.
            "Exclude<LucentJson, null>".to_string()
        } else {
            match schema["type"].as_str() {
                Some("string") => "string".into(),
                Some("integer" | "number") => "number".into(),
                Some("boolean") => "boolean".into(),
                Some("array") => format!("{}[]", self.value(&schema["items"], depth)),
                Some("object") if schema.get("properties").is_some() => self.object(schema, depth),
                Some("object") => "{ [key: string]: LucentJson }".into(),
                // `{}`: a `json` field, which takes `null` too.
                _ => return "LucentJson".into(),
            }
        };
        if nullable {
            format!("{base} | null")
        } else {
            base
        }
    }
}

/// What a property's comment says: its title, description and format, and that it is
/// write-only.
fn property_doc(property: &Json) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for text in [&property["title"], &property["description"]]
        .into_iter()
        .filter_map(Json::as_str)
    {
        let text = text.trim();
        if text.ends_with(['.', '!', '?']) {
            parts.push(text.to_string());
        } else {
            parts.push(format!("{text}."));
        }
    }
    match property["format"].as_str() {
        Some("date-time") => parts.push("An RFC 3339 date-time.".into()),
        Some("uuid") if property.get("description").is_none() => parts.push("An id.".into()),
        _ => {}
    }
    if property["writeOnly"] == Json::Bool(true) {
        parts.push("Write-only: never in an answer.".into());
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// A property key, quoted unless it is an identifier.
fn property_name(key: &str) -> String {
    let identifier = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if identifier {
        key.to_string()
    } else {
        Json::String(key.to_string()).to_string()
    }
}

/// Text safe inside a `/** ... */` comment, on one line.
fn jsdoc(text: &str) -> String {
    text.replace("*/", "*\\/").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn render(schema: Json) -> String {
        let names = BTreeMap::from([("posts".to_string(), "Posts".to_string())]);
        let components = Map::new();
        Renderer {
            names: &names,
            components: &components,
        }
        .value(&schema, 0)
    }

    #[test]
    fn value_schemas_become_typescript() {
        let cases = [
            (json!({"type": "string"}), "string"),
            (json!({"type": "string", "nullable": true}), "string | null"),
            (json!({"type": "integer", "format": "int64"}), "number"),
            (json!({"type": "number", "nullable": true}), "number | null"),
            (json!({"type": "boolean"}), "boolean"),
            (
                json!({"type": "string", "enum": ["draft", "published"]}),
                r#""draft" | "published""#,
            ),
            (
                json!({"type": "string", "enum": ["a", null], "nullable": true}),
                r#""a" | null"#,
            ),
            (json!({}), "LucentJson"),
            (
                json!({"anyOf": [{"type": "object"}, {"type": "string"}]}),
                "Exclude<LucentJson, null>",
            ),
            (json!({"$ref": "#/components/schemas/posts"}), "Posts"),
            (
                json!({"type": "array", "items": {"$ref": "#/components/schemas/posts"}}),
                "Posts[]",
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
                "{\n  a: string;\n}",
            ),
        ];
        for (schema, expected) in cases {
            assert_eq!(render(schema.clone()), expected, "{schema}");
        }
    }

    #[test]
    fn names_and_comments_are_safe() {
        assert_eq!(pascal_case("posts"), "Posts");
        assert_eq!(pascal_case("blog-posts"), "BlogPosts");
        assert_eq!(pascal_case("blog_posts2"), "BlogPosts2");
        assert_eq!(property_name("createdAt"), "createdAt");
        assert_eq!(property_name("a-b"), "\"a-b\"");
        assert_eq!(jsdoc("ends */ here\nnext"), "ends *\\/ here next");
    }

    #[test]
    fn properties_carry_readonly_optional_and_write_only() {
        let schema = json!({"type": "object", "properties": {
            "id": {"type": "string", "format": "uuid", "readOnly": true},
            "secret": {"type": "string", "writeOnly": true},
        }, "required": ["id"]});
        assert_eq!(
            render(schema),
            "{\n  /** An id. */\n  readonly id: string;\n  /** Write-only: never in an answer. */\n  secret?: string;\n}"
        );
    }
}
